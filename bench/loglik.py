"""Option log-likelihood scoring speed: one cached context pass + batched options vs naive scoring.

    PYTHONPATH=$PWD python bench/loglik.py --problems data/problems/problems.parquet [--model DIR]

Takes ``--n`` seeded scorable test problems (all families), scores their options both ways
(:func:`tasks.evaluate.loglik.score_options` and :func:`~tasks.evaluate.loglik.naive_scores`) and
prints one JSON line: the seconds of each timed run (after a warm-up; runs alternate, the fastest
counts, as the machine is shared), problems/s and lm-eval-equivalent tokens/s (the tokens of every
context+option sequence, which is what naive scoring runs), the speed-up, and the largest absolute
and relative differences between the two scores. Speed does not depend on the weights, so without
``--model`` an untrained model of ``params.yaml``'s default size is built in a temporary folder
(tokenizer trained on ``data/corpus/documents.parquet``). The chat is the problem prompt as one
user turn: a stand-in for timing only (evaluation renders the SFT prompt, built elsewhere).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from tasks.evaluate.loglik import (contexts, label_sets, naive_scores, problem_options, scorable,
                                   score_options)


def build_model(folder: Path) -> Path:
    from tasks.common.params import BaseModelParams
    from tasks.lm.modeling import save_base

    texts = pd.read_parquet("data/corpus/documents.parquet", columns=["text"])["text"].tolist()
    save_base(BaseModelParams(), folder, texts, seed=0)
    return folder


def main() -> None:
    import torch

    from tasks.lm.modeling import load_model, load_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    parser.add_argument("--model", help="model folder (default: an untrained default-size model)")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=None, help="contexts per pass (default: "
                        "1 on CPU, 8 on CUDA)")
    parser.add_argument("--max-rows", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; the fastest counts")
    args = parser.parse_args()
    torch.set_num_threads(max(1, min(torch.get_num_threads(), os.cpu_count() or 1)))
    problems = pd.read_parquet(args.problems)
    labels = label_sets(problems)
    test = scorable(problems, labels)
    chosen = test.sample(n=min(args.n, len(test)), random_state=args.seed)
    options = [list(problem_options(r, labels).options) for r in chosen.to_dict("records")]
    fast = slow = None
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        folder = Path(args.model) if args.model else build_model(Path(tmp) / "base")
        built = time.perf_counter() - start
        tokenizer = load_tokenizer(folder)
        model = load_model(folder, tokenizer).eval()
    ctx = contexts(tokenizer, [[{"role": "user", "content": p}] for p in chosen["prompt"]])
    ctx_len = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in ctx]
    def fast_run(k: int | None = None):
        return score_options(model, tokenizer, ctx[:k], options[:k], batch_size=args.batch_size,
                             max_rows=args.max_rows)

    def slow_run(k: int | None = None):
        return naive_scores(model, tokenizer, ctx[:k], options[:k])

    fast_run(2), slow_run(2)  # warm-up: thread pools, kernels
    times: dict[str, list[float]] = {"cached": [], "naive": []}
    for _ in range(args.repeats):  # alternate, so a busy spell on the machine hits both
        for name, run in (("cached", fast_run), ("naive", slow_run)):
            start = time.perf_counter()
            result = run()
            times[name].append(time.perf_counter() - start)
            fast, slow = (result, slow) if name == "cached" else (fast, result)
    fast_s, slow_s = min(times["cached"]), min(times["naive"])
    tokens = sum(n + s.n_tokens for n, row in zip(ctx_len, fast) for s in row)
    pairs = [(a.logprob, b.logprob) for x, y in zip(fast, slow) for a, b in zip(x, y)]
    diff = max(abs(a - b) for a, b in pairs)
    rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in pairs)
    print(json.dumps({
        "problems": len(chosen), "options": sum(len(o) for o in options),
        "context_tokens_mean": round(sum(ctx_len) / len(ctx_len), 1),
        "parameters": sum(p.numel() for p in model.parameters()), "model_built_seconds": round(built, 1),
        "cached_seconds": [round(t, 2) for t in times["cached"]],
        "naive_seconds": [round(t, 2) for t in times["naive"]],
        "cached_problems_per_s": round(len(chosen) / fast_s, 2),
        "cached_tokens_per_s": round(tokens / fast_s), "naive_tokens_per_s": round(tokens / slow_s),
        "speedup": round(slow_s / fast_s, 2), "max_abs_diff": diff, "max_rel_diff": rel,
        "mean_abs_logprob": sum(abs(b) for _, b in pairs) / len(pairs),
        "torch_threads": torch.get_num_threads(), "load_avg_1m": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
