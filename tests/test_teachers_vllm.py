"""The OpenAI-compatible teacher against a real vLLM server (CPU build) of a tiny model on loopback."""
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tasks.annotate_steps import teach
from tasks.call_cache import CallCache
from tasks.params import Annotate
from tasks.prompts import load_prompts
from tasks.teachers import CachedClient, Call, OpenAIBackend

pytestmark = pytest.mark.slow

CHATML = ("{%- for m in messages -%}{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
          "{%- endfor -%}{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


def _tiny_model(folder) -> None:
    """A 4-layer Qwen3 of hidden size 64 and a byte-level BPE tokenizer with a ChatML template."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3ForCausalLM

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(["The cell expresses CD79A and MS4A1; the answer is B cell."] * 50, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.chat_template = CHATML
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=32,
                         max_position_embeddings=512, tie_word_embeddings=True,
                         eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-model")
    _tiny_model(folder)
    port = _free_port()
    log = open(folder / "server.log", "w")
    env = os.environ | {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(folder),
                             "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port),
                             "--dtype", "float32", "--max-model-len", "512", "--enforce-eager"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited: {(folder / 'server.log').read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail("vLLM server did not come up in 300 s")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_chat_completions_with_token_accounting_and_cache(vllm_server, tmp_path):
    backend = OpenAIBackend(vllm_server, "tiny", concurrency=2, timeout_s=60, max_retries=1)
    client = CachedClient(backend, CallCache(tmp_path / "calls.sqlite"))
    calls = [Call([{"role": "user", "content": f"Which cell type is cell {i}?"}],
                  {"temperature": 0.0, "max_tokens": 8, "seed": 0}) for i in range(3)]
    replies = client.complete(calls)
    assert all(r.error is None and isinstance(r.text, str) for r in replies)
    assert client.stats.prompt_tokens > 0 and 0 < client.stats.completion_tokens <= 24
    again = client.complete(calls)
    assert client.stats.sent == 3 and client.stats.cache_hits == 3
    assert [r.text for r in again] == [r.text for r in replies]


def test_untrained_teacher_output_is_retried_then_rejected(vllm_server, tmp_path):
    import json

    import pandas as pd

    # short prompts (a user override folder) so the 512-token context holds them
    prompts_dir = tmp_path / "prompts"
    prompts_dir.mkdir()
    (prompts_dir / "teacher_system.txt").write_text("Reply with JSON steps.")
    (prompts_dir / "teacher_user.txt").write_text("{question} {answer} {evidence}{passages}{focus}")
    (prompts_dir / "teacher_cell.txt").write_text("")
    row = {"id": "short", "family": "perturb_de", "category": "cell", "task_kind": "annotation",
           "modality": "cell", "prompt": "Does A change B?", "answer": "yes", "answer_type": "yes_no",
           "choices": [], "evidence": json.dumps({"pert": "A"}), "split": "train", "source_ids": [],
           "entity": "e"}
    long = row | {"id": "long", "prompt": "Does A change B? " + " ".join(f"G{i}" for i in range(600))}
    p = Annotate(teacher="openai", endpoint=vllm_server, model="tiny", max_tokens=16, max_parse_retries=1,
                 timeout_s=60)
    client = CachedClient(OpenAIBackend(vllm_server, "tiny", concurrency=2, timeout_s=60, max_retries=2),
                          CallCache(tmp_path / "c.sqlite"))
    taught = teach(pd.DataFrame([row, long]), client, load_prompts(prompts_dir), {}, p)
    # a random 2-layer model writes no JSON: asked twice (one re-ask), then rejected with its reason
    assert taught["short"]["trace"] is None and taught["short"]["reason"] == "bad_json"
    assert taught["short"]["tries"] == 2
    # a prompt over the server's context is a client error: reported at once, never retried
    assert taught["long"]["reason"].startswith("teacher_error: HTTP 400")
    assert client.stats.sent == 3 and client.stats.failed == 1 and client.stats.attempts == 3
