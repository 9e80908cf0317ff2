"""Generation speed: transformers ``generate`` vs vLLM on the same model and prompts, in one run.

    PYTHONPATH=$PWD python bench/generate.py --model models/pretrain --prompts 64 --max-new-tokens 64

Prints one JSON line: tokens/s of each engine, their ratio, vLLM's engine start-up seconds, and the
generated-token count from which vLLM pays for its start (``generation.vllm_min_tokens`` in
params.yaml is set from it). vLLM runs twice, side by side: its engine core in the child that
generates (``generation.vllm_engine_process: false``, the CPU default) and in a process of its own
(vLLM's default), with the ratio of their wall times and whether they return the same tokens.
Greedy by default, so every engine generates the same tokens; vLLM's overhead is the child
process's whole wall time less its generation time (imports + engine start).
Without ``--model`` a tiny model is built from a config in a temporary folder.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from tasks.lm.generate import generate_transformers, generate_vllm
from tasks.common.params import BaseModelParams, Generation


def tiny_model(folder: Path) -> Path:
    import pandas as pd

    from tasks.lm.modeling import save_base

    docs = Path("data/corpus/documents.parquet")
    texts = (pd.read_parquet(docs, columns=["text"])["text"].tolist() if docs.exists()
             else [f"gene G{i} is linked to phenotype P{i % 17}" for i in range(2000)])
    save_base(BaseModelParams(), folder, texts, seed=0)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: a tiny model built here)")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--batch-size", type=int, default=16, help="transformers prompts per batch")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else tiny_model(Path(tmp) / "tiny")
        prompts = [[{"role": "user", "content": f"Which cell type expresses <cell>CD3D, CD8A, "
                     f"IL7R</cell>? Case {i}."}] for i in range(args.prompts)]
        settings = Generation(batch_size=args.batch_size, max_model_len=512)
        common = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=1.0,
                      n=1, seed=0)
        hf = generate_transformers(model, prompts, settings=settings, **common)
        vllm = {}
        for label, own_process in (("vllm", False), ("vllm_engine_process", True)):
            start = time.perf_counter()
            out = generate_vllm(model, prompts, settings=settings.model_copy(
                update={"vllm_engine_process": own_process}), **common)
            vllm[label] = (out, time.perf_counter() - start)
    hf_rate = hf.stats["tokens_per_second"]
    report = {"prompts": args.prompts, "max_new_tokens": args.max_new_tokens,
              "transformers": {"tokens": hf.stats["generated_tokens"],
                               "seconds": round(hf.stats["generate_seconds"], 2),
                               "tokens_per_second": round(hf_rate, 1)}}
    for label, (out, wall) in vllm.items():
        rate, overhead = out.stats["tokens_per_second"], wall - out.stats["generate_seconds"]
        # vLLM wins once tokens / hf_rate > overhead + tokens / rate
        break_even = overhead / (1 / hf_rate - 1 / rate) if rate > hf_rate else None
        report[label] = {"tokens": out.stats["generated_tokens"],
                         "seconds": round(out.stats["generate_seconds"], 2),
                         "tokens_per_second": round(rate, 1),
                         "engine_start_seconds": round(out.stats["engine_start_seconds"], 1),
                         "child_process_wall_seconds": round(wall, 1), "overhead_seconds": round(overhead, 1),
                         "over_transformers": round(rate / hf_rate, 2),
                         "break_even_generated_tokens": round(break_even) if break_even else None}
    report["engine_process_wall_over_in_process"] = round(vllm["vllm_engine_process"][1] / vllm["vllm"][1], 2)
    texts = {label: out.texts for label, (out, _) in vllm.items()}
    report["same_tokens"] = {"vllm_engine_process_vs_vllm": texts["vllm_engine_process"] == texts["vllm"],
                             "vllm_vs_transformers": texts["vllm"] == hf.texts}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
