"""The generation engine shared by annotate, evaluate and GRPO: completions and P(answer) scores.

``generate(model_dir, prompts, ...)`` returns ``n`` completions per prompt. A prompt is either a
chat (a list of ``{"role", "content"}`` messages, rendered with the model's ChatML template and an
open assistant turn) or a plain string used as is. Two engines, same tokenizer, same decoding:

* ``transformers``: batched ``model.generate`` in this process (left padding).
* ``vllm``: an offline ``vllm.LLM`` in a child process (``python -m tasks.lm.generate``): vLLM's
  processes and threads are fragile inside Prefect task threads and pytest, and a child frees its
  memory on exit. The engine core runs in that child (``generation.vllm_engine_process: false``,
  the CPU default: 1.8x faster on 2 cores, same tokens) or in a process of its own (vLLM's
  default; the gpu profile). On CPU it runs with ``enforce_eager=True``, float32 and
  ``VLLM_CPU_KVCACHE_SPACE`` GiB of KV cache. Prompts go in as token ids and completions come back
  as token ids, decoded here, so both engines see and return exactly the same tokens.
* ``auto`` picks vLLM when ``prompts x n x max_new_tokens >= vllm_min_tokens``, else transformers.
  Measured by ``bench/generate.py --model models/pretrain --prompts 64 --max-new-tokens 448``
  (greedy, a quiet 2-core machine): transformers 3,099 tokens/s; vLLM in the child 8,389 tokens/s
  after 2.4 s of engine start (14.9 s child wall), in its own process 5,796 after 16.1 s (32.6 s),
  all three the same tokens. So vLLM in the child pays off from ~61k generated tokens, ~193k in its
  own process. The default 20k predates these figures (transformers ran at 63 tokens/s on a loaded
  machine); no call of the default chain falls between 20k and 61k (the held-out check asks 9.2k,
  the room check 147k, evaluate 706k), so it decides nothing there today.

On GPUs, pass ``tensor_parallel_size`` (``params.base.tensor_parallel_size``: vLLM shards the model
over that many GPUs) and ``gpus``, the Prefect ``gpu`` slots held while the engine runs (0 on CPU).
Each call loads the model once for all its prompts: send prompts in large batches.

Decoding drops ChatML tokens but keeps the tag tokens (``<think>``, ``<answer>`` ...): they are not
special (see tasks/lm/modeling.py). Temperature 0 is greedy and deterministic. Sampling is seeded:
vLLM seeds each prompt (seed + i x n), so a prompt's samples do not depend on the batch around it;
transformers seeds each batch of ``generation.batch_size`` prompts (seed + its first index), so
its samples depend on the batch size but not on earlier batches.

>>> choose_engine(n_tokens=100, settings=Generation(engine="auto", vllm_min_tokens=1000))
'transformers'
>>> renormalise({"yes": 0.5, "no": 1.5})
{'yes': 0.25, 'no': 0.75}
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tasks.common.dispatch import gpu_slots
from tasks.lm.modeling import EOS, PAD, load_model, load_tokenizer, render_chat, resolve
from tasks.common.params import Generation

log = logging.getLogger(__name__)
Prompt = str | Sequence[Mapping[str, str]]


@dataclass
class Completions:
    texts: list[list[str]]
    stats: dict[str, float] = field(default_factory=dict)  # seconds, generated tokens, engine start


def choose_engine(n_tokens: int, settings: Generation, engine: str | None = None) -> str:
    """The engine for a call that generates about ``n_tokens`` tokens."""
    engine = engine or settings.engine
    if engine != "auto":
        return engine
    if n_tokens < settings.vllm_min_tokens:
        return "transformers"
    if importlib.util.find_spec("vllm") is None:
        log.warning("engine auto: vllm is not installed; generating %d tokens with transformers", n_tokens)
        return "transformers"
    return "vllm"


def prompt_texts(tokenizer: Any, prompts: Sequence[Prompt]) -> list[str]:
    return [p if isinstance(p, str) else render_chat(tokenizer, list(p)) for p in prompts]


def generate(model_dir: str | Path, prompts: Sequence[Prompt], *, max_new_tokens: int = 128,
             temperature: float = 0.0, top_p: float = 1.0, n: int = 1, seed: int = 0,
             engine: str | None = None, settings: Generation | None = None,
             tensor_parallel_size: int = 1, gpus: int = 0) -> list[list[str]]:
    """``n`` completions for each prompt (a list per prompt), tag tokens kept."""
    settings = settings or Generation()
    chosen = choose_engine(len(prompts) * n * max_new_tokens, settings, engine)
    common = dict(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=n,
                  seed=seed, settings=settings)
    with gpu_slots(gpus):
        if chosen == "vllm":
            return generate_vllm(model_dir, prompts, tensor_parallel_size=tensor_parallel_size,
                                 **common).texts
        return generate_transformers(model_dir, prompts, **common).texts


def _stop_ids(tokenizer: Any) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)]


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def generate_transformers(model_dir: str | Path, prompts: Sequence[Prompt], *, max_new_tokens: int,
                          temperature: float, top_p: float, n: int, seed: int,
                          settings: Generation) -> Completions:
    import torch
    from transformers import GenerationConfig

    tokenizer = load_tokenizer(model_dir)
    tokenizer.padding_side = "left"
    model = load_model(model_dir, tokenizer, settings.dtype).to(_device()).eval()
    greedy = temperature <= 0
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=not greedy,
                              num_return_sequences=1 if greedy else n,
                              eos_token_id=_stop_ids(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              **({} if greedy else {"temperature": temperature, "top_p": top_p,
                                                     "top_k": 0}))
    texts = prompt_texts(tokenizer, prompts)
    out: list[list[str]] = []
    generated, start = 0, time.perf_counter()
    for first in range(0, len(texts), settings.batch_size):
        batch = tokenizer(texts[first:first + settings.batch_size], return_tensors="pt",
                          padding=True, add_special_tokens=False).to(model.device)
        torch.manual_seed(seed + first)  # a batch's samples do not depend on earlier batches
        with torch.inference_mode():
            ids = model.generate(**batch, generation_config=config)
        new = ids[:, batch["input_ids"].shape[1]:]
        generated += int((~torch.isin(new, torch.tensor(_stop_ids(tokenizer), device=new.device))).sum())
        decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
        per_prompt = 1 if greedy else n
        for i in range(0, len(decoded), per_prompt):
            out.append(decoded[i:i + per_prompt] * (n if greedy else 1))
    seconds = time.perf_counter() - start
    return Completions(out, {"generate_seconds": seconds, "generated_tokens": generated,
                             "tokens_per_second": generated / seconds if seconds else 0.0})


def generate_vllm(model_dir: str | Path, prompts: Sequence[Prompt], *, max_new_tokens: int,
                  temperature: float, top_p: float, n: int, seed: int,
                  settings: Generation, tensor_parallel_size: int = 1) -> Completions:
    tokenizer = load_tokenizer(model_dir)
    prompt_ids = [tokenizer(t, add_special_tokens=False)["input_ids"]
                  for t in prompt_texts(tokenizer, prompts)]
    longest = max(len(p) for p in prompt_ids) + max_new_tokens
    if longest > settings.max_model_len:
        raise ValueError(f"generation.max_model_len is {settings.max_model_len}, but a prompt plus "
                         f"max_new_tokens needs {longest} tokens")
    source, revision = resolve(model_dir)
    request = {"model": source, "revision": revision, "prompt_ids": prompt_ids,
               "stop_ids": _stop_ids(tokenizer), "max_new_tokens": max_new_tokens,
               "temperature": temperature, "top_p": top_p, "n": n, "seed": seed,
               "tensor_parallel_size": tensor_parallel_size, "settings": settings.model_dump()}
    with tempfile.TemporaryDirectory(prefix="vllm-") as tmp:
        req, resp, logfile = Path(tmp, "request.json"), Path(tmp, "response.json"), Path(tmp, "log")
        req.write_text(json.dumps(request))
        env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": str(settings.kv_cache_gib),
               "VLLM_ENABLE_V1_MULTIPROCESSING": str(int(settings.vllm_engine_process)),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]),
                                                           os.environ.get("PYTHONPATH")]))}
        with logfile.open("w") as fh:
            code = subprocess.run([sys.executable, "-m", "tasks.lm.generate", str(req), str(resp)],
                                  stdout=fh, stderr=subprocess.STDOUT, env=env).returncode
        if code != 0:
            tail = "".join(logfile.read_text().splitlines(keepends=True)[-30:])
            raise RuntimeError(f"vLLM generation exited with code {code}:\n{tail}")
        answer = json.loads(resp.read_text())
    texts = [[tokenizer.decode(ids, skip_special_tokens=True) for ids in outs]
             for outs in answer["token_ids"]]
    return Completions(texts, answer["stats"])


def _vllm_child(request_path: str, response_path: str) -> None:
    """Runs in the child process: one vLLM engine, one batch of token-id prompts."""
    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    r = json.loads(Path(request_path).read_text())
    s = Generation.model_validate(r["settings"])
    cuda = torch.cuda.is_available()
    start = time.perf_counter()
    # Each prompt samples from its own generator (below). vLLM 0.32 rewinds a request's generator
    # after a chunked prefill (set_offset, which CPU generators lack: "CPU Generator does not use
    # offset"), so on CPU every prefill runs whole: chunked prefill off, a step's token budget at
    # least one whole sequence.
    whole_prefills = {} if cuda else {"enable_chunked_prefill": False,
                                      "max_num_batched_tokens": max(s.max_model_len, 4096)}
    llm = LLM(model=r["model"], revision=r["revision"], skip_tokenizer_init=True,
              dtype=s.dtype, max_model_len=s.max_model_len, enforce_eager=not cuda, seed=r["seed"],
              gpu_memory_utilization=s.gpu_memory_utilization, trust_remote_code=False,
              tensor_parallel_size=r["tensor_parallel_size"], **whole_prefills)
    started = time.perf_counter() - start
    greedy = r["temperature"] <= 0
    # Prompt i samples with seed + i * n (vLLM adds the sample's index): its samples depend on
    # neither the other prompts nor the engine's scheduling. With the engine's one generator they
    # did: two runs of one grpo stage sampled different rollouts (the first vLLM start on a fresh
    # machine schedules differently).
    sampling = [SamplingParams(n=1 if greedy else r["n"], temperature=max(r["temperature"], 0.0),
                               top_p=r["top_p"], max_tokens=r["max_new_tokens"],
                               seed=r["seed"] + i * r["n"], stop_token_ids=r["stop_ids"],
                               detokenize=False)
                for i in range(len(r["prompt_ids"]))]
    start = time.perf_counter()
    outputs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in r["prompt_ids"]], sampling)
    seconds = time.perf_counter() - start
    token_ids = [[list(c.token_ids) for c in o.outputs] * (r["n"] if greedy else 1) for o in outputs]
    generated = sum(len([t for t in c.token_ids if t not in r["stop_ids"]])
                    for o in outputs for c in o.outputs)
    Path(response_path).write_text(json.dumps({"token_ids": token_ids, "stats": {
        "engine_start_seconds": started, "generate_seconds": seconds, "generated_tokens": generated,
        "tokens_per_second": generated / seconds if seconds else 0.0}}))


def next_token_probs(model_dir: str | Path, prompts: Sequence[Prompt],
                     candidates: Sequence[str] = ("yes", "no"),
                     settings: Generation | None = None) -> list[dict[str, float]]:
    """P(candidate | prompt) for each prompt and candidate, from one batched forward pass.

    A candidate of several tokens scores the product of its tokens' probabilities (for a single
    token, the next-token probability). Not renormalised; see :func:`renormalise`.
    """
    import torch

    settings = settings or Generation()
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, tokenizer, settings.dtype).to(_device()).eval()
    cand_ids = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in candidates]
    if any(not ids for ids in cand_ids):
        raise ValueError(f"a candidate encodes to no tokens: {list(candidates)}")
    pairs = [(tokenizer(t, add_special_tokens=False)["input_ids"], c)
             for t in prompt_texts(tokenizer, prompts) for c in cand_ids]
    scores: list[float] = []
    for first in range(0, len(pairs), settings.batch_size):
        batch = pairs[first:first + settings.batch_size]
        width = max(len(p) + len(c) for p, c in batch)
        ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, (p, c) in enumerate(batch):  # right padding: positions stay those of one prompt
            ids[row, :len(p) + len(c)] = torch.tensor(p + c)
            mask[row, :len(p) + len(c)] = 1
        with torch.inference_mode():
            logits = model(input_ids=ids.to(model.device), attention_mask=mask.to(model.device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        for row, (p, c) in enumerate(batch):
            positions = torch.arange(len(p) - 1, len(p) + len(c) - 1)
            scores.append(float(logprobs[row, positions, torch.tensor(c)].sum().exp()))
    k = len(candidates)
    return [dict(zip(candidates, scores[i:i + k])) for i in range(0, len(scores), k)]


def renormalise(probs: Mapping[str, float]) -> dict[str, float]:
    """Probabilities over the candidates only, summing to 1 (e.g. P(yes) for an AUROC)."""
    total = sum(probs.values())
    return {k: v / total for k, v in probs.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="vLLM worker: request.json in, response.json out")
    parser.add_argument("request")
    parser.add_argument("response")
    args = parser.parse_args()
    _vllm_child(args.request, args.response)
