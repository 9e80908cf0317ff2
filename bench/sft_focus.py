"""What more SFT buys: fine-tune on a few families only, then score those families, timed.

    PYTHONPATH=$PWD python bench/sft_focus.py --families perturb_de tf_binding --steps 150 \
        [--start models/pretrain] [--max-per-family 30] [--hidden 256 --layers 4]

Cold-start SFT (``tasks/train/sft.py``, same params as the ``sft`` stage except the data and steps) on the
named families' gold traces only, from ``--start``; with ``--hidden``/``--layers`` a fresh model of
that size (the base tokenizer) is fine-tuned instead, to separate size from steps. Then the same
evaluation as the ``evaluate`` stage on those families' test problems. Prints one JSON line:
accuracy and format rate per family, chats seen per family, train and evaluation seconds.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd

from tasks.common import dispatch
from tasks.evaluate import scoring as ev
from tasks.lm.generate import generate
from tasks.lm.modeling import build_model, load_tokenizer
from tasks.common.params import BaseModelParams, Verifiers, load_params
from tasks.common.prompts import load_prompts, problem_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", required=True)
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--start", default="models/pretrain")
    parser.add_argument("--max-per-family", type=int, default=30)
    parser.add_argument("--hidden", type=int)
    parser.add_argument("--layers", type=int)
    args = parser.parse_args()
    params = load_params()
    tag = Verifiers.answer_tag_of(params)
    with tempfile.TemporaryDirectory(prefix="sft-focus-") as tmp:
        tmp = Path(tmp)
        chats = pd.read_parquet("data/annotate/sft.parquet")
        chats = chats[chats["family"].isin(args.families)]
        chats.to_parquet(tmp / "chats.parquet", index=False)
        start = args.start
        if args.hidden or args.layers:
            size = params.pretrain.model.model_copy(update={k: v for k, v in
                                                            {"hidden": args.hidden, "layers": args.layers}.items() if v})
            tokenizer = load_tokenizer(args.start)
            build_model(BaseModelParams.model_validate(size.model_dump()), tokenizer, 0).save_pretrained(tmp / "start")
            tokenizer.save_pretrained(tmp / "start")
            start = str(tmp / "start")
        sft = params.sft.model_copy(update={
            "instruction": params.sft.instruction.model_copy(update={"epochs": 0}),
            "cold_start": params.sft.cold_start.model_copy(update={"data": [str(tmp / "chats.parquet")],
                                                                   "epochs": 1000, "max_steps": args.steps})})
        cfg = {"params": sft.model_dump(mode="json"), "seed": 0, "start_dir": start,
               "work_dir": str(tmp / "work"), "metrics_path": str(tmp / "metrics.json")}
        (tmp / "run.json").write_text(json.dumps(cfg))
        began = time.perf_counter()
        dispatch.launch("tasks.train.sft", ["--config", str(tmp / "run.json")], env={"MLFLOW_RUN_ID": ""})
        train_s = time.perf_counter() - began
        model = json.loads((tmp / "metrics.json").read_text())["final_model"]

        problems = pd.read_parquet("data/problems/problems.parquet")
        test = ev.select_test(problems[problems["family"].isin(args.families)], args.max_per_family, 0)
        prompts = load_prompts(None)
        messages = [problem_messages(r, prompts, tag) for r in test.to_dict("records")]
        began = time.perf_counter()
        completions = [c[0] for c in generate(model, messages, max_new_tokens=params.evaluate.max_new_tokens,
                                              temperature=0.0, settings=params.generation)]
        tokenizer = load_tokenizer(model)
        lengths = [len(tokenizer(c)["input_ids"]) for c in completions]
        scored = ev.score_completions(test, completions, lengths, tag)
        eval_s = time.perf_counter() - began
    per_family = {f: {"accuracy": m["accuracy"], "format_rate": m["format_rate"], "n": m["n"]}
                  for f, m in ev.family_metrics(scored).items()}
    print(json.dumps({"families": per_family, "steps": args.steps, "hidden": args.hidden,
                      "layers": args.layers, "chats_per_step": sft.batch_size * sft.grad_accum,
                      "chats_available": len(chats), "train_seconds": round(train_s, 1),
                      "eval_seconds": round(eval_s, 1)}))


if __name__ == "__main__":
    main()
