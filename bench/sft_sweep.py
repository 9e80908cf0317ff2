"""The sft stage's training for several seeds and answer-phase epochs, each scored as evaluate scores.

    PYTHONPATH=$PWD python bench/sft_sweep.py --seeds 0 1 2 --answer-epochs 15 30 --gpus 1 --jobs 6

Each (seed, epochs) pair trains every phase of the ``sft`` stage (``tasks/train/sft.py``'s
``train``: the params of ``sft`` with ``base.seed`` and ``sft.answer.epochs`` replaced) from
``--start`` in a process of its own, ``--jobs`` at once (the embedded 1.3M-parameter model leaves
a GPU mostly idle, so several runs share one). Each trained model, and the start model once, is
then scored as the ``evaluate`` stage's headline is: direct option log-likelihood on the test
problems ``evaluate`` selects (``tasks/evaluate/loglik.py``, ``comparison.py``). Prints one JSON
line: per run the mean over families and each family's accuracy; paired run - start on the mean
(95% bootstrap interval); and, per seed, each epoch setting paired against the first.

What it holds fixed: the data and the start model of the workspace (``dvc.lock``'s seed), so the
seeds here vary the training alone (order of chats, initial LoRA/heads, dropout), not the splits
and traces that ``bench/seeds.py`` reruns with the whole chain. ``--max-steps`` caps every phase
(a quick check that it runs, not a measure).

Measured once on an H200 (the device machine, 6 runs at once, 2 CPU threads each, the stage's
fp32 params): each run trained 5.4-6.8 steps a second, where one run on 2 AVX2 CPU cores trains
about 3.5 (the stage's answer phase: 2,250 steps in 645 s). The 1.3M-parameter model is bound by
each step's Python and kernel launches, not by the GPU: a 15-epoch run (3,015 steps) takes about
8.5 minutes there and a 30-epoch one (5,265) about 15, so one 10-minute call holds one epoch
setting of a few seeds, not two. That call's 500-second cap stopped all six before any was scored.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from tasks.common.params import Annotate, Verifiers, load_params
from tasks.common.prompts import load_prompts, problem_messages
from tasks.evaluate import comparison, loglik
from tasks.evaluate.scoring import select_test
from tasks.evaluate.stats import MEAN

PROBLEMS = "data/problems/problems.parquet"


def score(model_dir: str, name: str, params) -> pd.DataFrame:
    """The evaluate stage's direct log-likelihood rows of one model (a ``checkpoint`` column first)."""
    e, tag = params.evaluate, Verifiers.answer_tag_of(params)
    problems = pd.read_parquet(PROBLEMS)
    test = select_test(problems, e.max_problems_per_family, params.base.seed)
    prompts = load_prompts((params.annotate or Annotate()).prompts_dir)
    chats = [problem_messages(r, prompts, tag, think=False) for r in test.to_dict("records")]
    return loglik.score_checkpoint(name, model_dir, test, {"direct": chats}, None, loglik.label_sets(problems), tag)


def train_one(seed: int, epochs: int, start: str, work: Path, gpus: int, max_steps: int | None) -> None:
    """One run: every sft phase with this seed and answer epochs, then its scores, into ``work``."""
    from tasks.train import sft

    params = load_params(require=("sft", "evaluate"))
    p = params.sft
    cap = {"max_steps": max_steps} if max_steps else {}
    p = p.model_copy(update={
        "answer": p.answer.model_copy(update={"epochs": epochs, **cap}),
        "instruction": p.instruction.model_copy(update=cap),
        "cold_start": p.cold_start.model_copy(update=cap)})
    begin = time.perf_counter()
    trained = sft.train({"params": p.model_dump(mode="json"), "start_dir": start, "work_dir": str(work / "train"),
                         "gpus": gpus, "seed": seed, "metrics_path": str(work / "metrics.json")})
    seconds = time.perf_counter() - begin
    score(trained["final_model"], f"seed{seed}-epochs{epochs}", params).to_parquet(work / "scores.parquet")
    (work / "run.json").write_text(json.dumps({
        "seed": seed, "answer_epochs": epochs, "train_seconds": round(seconds),
        "steps": {n: ph["steps"] for n, ph in trained["phases"].items()},
        "train_loss": {n: round(ph["train_loss"], 4) for n, ph in trained["phases"].items()}}))


def mean_row(paired: dict) -> dict:
    (rows,) = paired.values()
    return next(r for r in rows if r["family"] == MEAN)


def summarise(start: pd.DataFrame, runs: dict[tuple[int, int], tuple[dict, pd.DataFrame]],
              epochs: list[int], seed: int) -> dict:
    out = {"start": comparison.loglik_metrics(start)["start"]["mean_accuracy"], "runs": [], "epochs_paired": []}
    for (s, e), (info, rows) in sorted(runs.items()):
        name = rows["checkpoint"].iloc[0]
        metrics = comparison.loglik_metrics(rows)[name]
        diff = mean_row(comparison.paired_comparisons(pd.concat([start, rows]), ["start", name], seed=seed))
        out["runs"].append({**info, "mean": metrics["mean_accuracy"], "chance": metrics["mean_chance"],
                            "minus_start": {k: diff[k] for k in ("diff", "low", "high", "p_value")},
                            "families": {f: r["acc"] for f, r in metrics["families"].items()}})
    for s in sorted({s for s, _ in runs}):
        first = runs.get((s, epochs[0]))
        for e in epochs[1:]:
            if first is None or (s, e) not in runs:
                continue
            a, b = first[1], runs[(s, e)][1]
            order = [a["checkpoint"].iloc[0], b["checkpoint"].iloc[0]]
            diff = mean_row(comparison.paired_comparisons(pd.concat([a, b]), order, seed=seed))
            out["epochs_paired"].append({"seed": s, "comparison": f"{e} - {epochs[0]} epochs",
                                         **{k: diff[k] for k in ("diff", "low", "high", "p_value")}})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--answer-epochs", type=int, nargs="+", default=[15, 30])
    parser.add_argument("--start", default="models/pretrain")
    parser.add_argument("--gpus", type=int, default=0, help="0: CPU; 1: every run on the one visible GPU")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads per run")
    parser.add_argument("--max-steps", type=int, help="cap every phase (a quick check)")
    parser.add_argument("--out", help="also write the JSON here")
    parser.add_argument("--one", type=int, nargs=2, metavar=("SEED", "EPOCHS"), help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.one:
        train_one(*a.one, a.start, Path(a.work), a.gpus, a.max_steps)
        return

    params = load_params(require=("sft", "evaluate"))
    with tempfile.TemporaryDirectory() as tmp:
        todo = [(s, e) for s in a.seeds for e in a.answer_epochs]
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads), "MLFLOW_RUN_ID": ""}
        running, runs, failed = {}, {}, {}
        begin = time.perf_counter()
        start = score(a.start, "start", params)
        while todo or running:
            while todo and len(running) < a.jobs:
                s, e = todo.pop(0)
                work = Path(tmp) / f"s{s}e{e}"
                work.mkdir()
                cmd = [sys.executable, __file__, "--one", str(s), str(e), "--work", str(work), "--start", a.start,
                       "--gpus", str(a.gpus)] + (["--max-steps", str(a.max_steps)] if a.max_steps else [])
                with open(work / "log.txt", "w") as log:  # the child keeps its own copy of the handle
                    running[(s, e)] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), work)
            time.sleep(2)
            for key, (proc, work) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[key]
                if proc.returncode:
                    failed[f"seed{key[0]}-epochs{key[1]}"] = (work / "log.txt").read_text()[-3000:]
                else:
                    runs[key] = (json.loads((work / "run.json").read_text()), pd.read_parquet(work / "scores.parquet"))
                print(f"done {key} rc={proc.returncode} at {time.perf_counter() - begin:.0f}s", file=sys.stderr,
                      flush=True)
                # after every run, so a sweep stopped early still leaves what it finished
                result = {"args": vars(a), "seconds": round(time.perf_counter() - begin),
                          **summarise(start, runs, a.answer_epochs, params.base.seed), "failed": failed,
                          "running": [f"seed{s}-epochs{e}" for s, e in running]}
                if a.out:
                    Path(a.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
