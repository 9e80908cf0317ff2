"""What one SFT phase does to what the model knows: train one phase, then score option log-likelihood.

    PYTHONPATH=$PWD python bench/sft_probe.py --families cell_type --epochs 10 --lr 1e-3 --save /tmp/ct
    PYTHONPATH=$PWD python bench/sft_probe.py --start /tmp/ct --epochs 2 --lr 2e-3 --per-family 120 \\
        --data data/annotate/sft.parquet data/annotate/sft_direct.parquet --eval cell_type protein_family

One phase of the ``sft`` stage's trainer (``tasks/train/sft.py``, the params of ``sft`` except the
data, families, epochs, rate and chats per family given here) from ``--start``, on the chats of
``--data`` restricted to ``--families`` (default: all). Then the ``evaluate`` stage's direct
log-likelihood scoring (``tasks/evaluate/loglik.py``) of the ``--eval`` families (default: the
trained ones) on their whole test split and on 60 train problems each. Prints one JSON line:
accuracy, chance and n per family and split, steps, loss, seconds. The first command above is
the answer phase on one family; the second, from its model, the stage's cold start on all
families: together they show how much a phase keeps of what the one before taught. ``--epochs 0``
trains nothing and scores ``--start`` as it is (``--start models/sft``: the stage's final model).
``--format N`` also generates greedy replies to the reasoning prompt of N test problems per
family and counts the well-formed ones (evaluate's ``format_ok``) and those opening with
``<think>``: the final sft model of the current ``dvc.lock``, for example, 27 and 49 of 50 at N=5.
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd

from tasks.common.params import Verifiers, load_params
from tasks.common.answers import THINK_TAG
from tasks.common.prompts import load_prompts, problem_messages
from tasks.evaluate.loglik import label_sets, loglik_summary, scorable, score_checkpoint
from tasks.train import sft


def score(model_dir: str, problems: pd.DataFrame, families: list[str], tag: str) -> dict:
    labels = label_sets(problems)
    prompts = load_prompts(None)
    out = {}
    for split in ("test", "train"):
        part = scorable(problems, labels, split)
        part = part[part["family"].isin(families)]
        if split == "train":
            part = part.groupby("family").head(60)
        part = part.reset_index(drop=True)
        chats = {"direct": [problem_messages(r, prompts, tag, think=False) for r in part.to_dict("records")]}
        rows = score_checkpoint(split, model_dir, part, chats, None, labels, tag)
        out[split] = {r.family: {"acc": round(float(r.acc), 3), "chance": round(float(r.chance), 3),
                                 "n": int(r.scorable)} for r in loglik_summary(rows).itertuples()}
    return out


def format_rate(model_dir: str, problems: pd.DataFrame, per_family: int, tag: str, params) -> dict:
    """Greedy replies to the reasoning prompt of the first ``per_family`` test problems of each
    family (600 new tokens): how many are well formed (``format_ok``, evaluate's format compliance)
    and how many open with the reasoning tag."""
    from tasks.lm.generate import generate
    from tasks.verifiers.formatting import format_ok

    test = problems[problems["split"] == "test"].sort_values("id").groupby("family").head(per_family)
    prompts = load_prompts(None)
    chats = [problem_messages(r, prompts, tag) for r in test.to_dict("records")]
    replies = [c[0] for c in generate(model_dir, chats, max_new_tokens=600, temperature=0.0,
                                      seed=params.base.seed, settings=params.generation)]
    return {"n": len(replies), "format_ok": sum(format_ok(r, tag) for r in replies),
            "opens_think": sum(r.lstrip().startswith(f"<{THINK_TAG}>") for r in replies)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="models/pretrain")
    parser.add_argument("--data", nargs="+", default=["data/annotate/sft_direct.parquet"])
    parser.add_argument("--families", nargs="+", help="default: every family of --data")
    parser.add_argument("--eval", nargs="+", help="families scored (default: --families)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--per-family", type=int, help="chats per family per epoch (default: all once)")
    parser.add_argument("--save", help="keep the trained model in this folder")
    parser.add_argument("--format", type=int, default=0, metavar="N",
                        help="also generate for N test problems per family and count well-formed replies")
    a = parser.parse_args()
    params = load_params(require=("sft",))
    tag = Verifiers.answer_tag_of(params)
    problems = pd.read_parquet("data/problems/problems.parquet")
    families = a.eval or a.families or sorted(problems["family"].unique())
    if a.epochs == 0:  # no phase: score --start as it is (the stage's own models/sft, say)
        print(json.dumps({"args": vars(a), **score(a.start, problems, families, tag)}))
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, path in enumerate(a.data):
            table = pd.read_parquet(path)
            if a.families:
                table = table[table["family"].isin(a.families)]
            table.to_parquet(Path(tmp) / f"data{i}.parquet")
            paths.append(str(Path(tmp) / f"data{i}.parquet"))
        # the answer phase's family_chats, kept for the families trained here (a name the data
        # lacks is an error in the stage)
        kept = {f: n for f, n in params.sft.answer.family_chats.items() if not a.families or f in a.families}
        phase = params.sft.answer.model_copy(update={"data": paths, "epochs": a.epochs, "learning_rate": a.lr,
                                                     "max_steps": None, "family_chats": kept})
        off = {"epochs": 0}
        p = params.sft.model_copy(update={"instruction": params.sft.instruction.model_copy(update=off),
                                          "cold_start": params.sft.cold_start.model_copy(update=off),
                                          "answer": phase, "chats_per_family": a.per_family})
        start = time.perf_counter()
        trained = sft.train({"params": p.model_dump(mode="json"), "start_dir": a.start,
                             "work_dir": str(Path(tmp) / "work"), "gpus": 0, "seed": params.base.seed,
                             "metrics_path": str(Path(tmp) / "metrics.json")})
        seconds = time.perf_counter() - start
        if a.save:
            shutil.copytree(trained["final_model"], a.save, dirs_exist_ok=True)
        result = score(trained["final_model"], problems, families, tag)
        if a.format:
            result["format"] = format_rate(trained["final_model"], problems, a.format, tag, params)
    summary = trained["phases"]["answer"]
    print(json.dumps({"args": vars(a), "steps": summary["steps"], "train_loss": round(summary["train_loss"], 3),
                      "train_seconds": round(seconds), **result}))


if __name__ == "__main__":
    main()
