"""A/B of two versions of the pipeline on the same seeds: one checkpoint's option log-likelihood
accuracy, paired problem by problem, per seed and pooled over the seeds.

    PYTHONPATH=$PWD python bench/ab.py --before REV REV ... --after REV REV ... [--checkpoint sft]
        [--metric loglik|format|generation]

Each REV is a commit or a ``dvc exp`` experiment (``git for-each-ref refs/exps`` lists them; what
``bench/seeds.py --keep`` leaves) whose ``dvc.lock`` holds an evaluate stage; ``--before`` and
``--after`` name one run per seed, in the same seed order. A seed's two runs must have scored the
same test problems (the seed draws the splits), so a change to the training is compared on exactly
the problems it was measured on: :func:`tasks.evaluate.stats.paired_bootstrap` per seed, then on
every seed's problems together (each family's problems of all seeds resampled together, the mean
over families as the headline). Each run's ``data/evaluate/loglik.parquet`` is read at its revision
from the DVC cache (``dvc.api.read``), so nothing is rerun and the workspace is not touched.
``--metric format`` pairs format compliance instead (``format_ok`` of the greedy replies in
``data/evaluate/predictions.parquet``, every generated problem, open answers included), and
``--metric generation`` the generation accuracy of those replies (``correct``).
``--exclude FAMILY ...`` leaves families out of both runs: a change that redefines what a family's
options are (long options scored as letters) is compared on the families it left as they were.

Why: one run of the default profile moves the mean by up to 0.04 and cell_type by 0.19 from seed to
seed (README, Seed spread); a change is judged by the paired difference over several seeds, not by
one run's table.
"""
from __future__ import annotations

import argparse
import io
import json
import subprocess

import pandas as pd

from tasks.evaluate.stats import MEAN, align, paired_bootstrap

TABLE = "data/evaluate/loglik.parquet"
PREDICTIONS = "data/evaluate/predictions.parquet"


def commit(rev: str) -> str:
    """``rev`` as a full commit id: ``dvc.api.read(rev="HEAD")`` read another commit's table here
    (an experiment's), so a symbolic name never reaches DVC."""
    found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit(f"bench/ab.py: {rev!r} is not a commit or experiment of this repository")
    return found.stdout.strip()


def read(path: str, rev: str) -> pd.DataFrame:
    import dvc.api

    return pd.read_parquet(io.BytesIO(dvc.api.read(path, rev=commit(rev), mode="rb")))


def loglik(rev: str, checkpoint: str, mode: str) -> pd.DataFrame:
    """The run's per-problem correctness of ``checkpoint`` (``mode`` log-likelihood)."""
    table = read(TABLE, rev)
    table = table[(table["checkpoint"] == checkpoint) & (table["mode"] == mode) & table["scorable"]]
    if table.empty:
        raise SystemExit(f"bench/ab.py: {rev}: no scorable {mode} rows of {checkpoint!r} in {TABLE}")
    return table[["problem_id", "family", "correct"]]


def replies(rev: str, checkpoint: str, column: str) -> pd.DataFrame:
    """One column of the run's greedy replies of ``checkpoint``, per problem, as ``correct``."""
    table = read(PREDICTIONS, rev)
    table = table[table["checkpoint"] == checkpoint]
    if table.empty:
        raise SystemExit(f"bench/ab.py: {rev}: no generated rows of {checkpoint!r} in {PREDICTIONS}")
    return table[["problem_id", "family"]].assign(correct=table[column])


def format_compliance(rev: str, checkpoint: str, mode: str) -> pd.DataFrame:
    """The run's per-problem format compliance of ``checkpoint``'s greedy reply."""
    return replies(rev, checkpoint, "format_ok")


def generation(rev: str, checkpoint: str, mode: str) -> pd.DataFrame:
    """The run's per-problem generation accuracy of ``checkpoint``: its greedy reply's answer."""
    return replies(rev, checkpoint, "correct")


# the same signature; format and generation ignore mode
METRICS = {"loglik": loglik, "format": format_compliance, "generation": generation}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", nargs="+", required=True)
    parser.add_argument("--after", nargs="+", required=True)
    parser.add_argument("--checkpoint", default="sft")
    parser.add_argument("--mode", default="direct", help="log-likelihood mode (--metric loglik)")
    parser.add_argument("--metric", choices=sorted(METRICS), default="loglik")
    parser.add_argument("--exclude", nargs="*", default=[], help="families left out of both runs")
    args = parser.parse_args()
    if len(args.before) != len(args.after):
        parser.error("--before and --after need one run per seed each, in the same order")

    metric = METRICS[args.metric]
    runs, pooled = {}, []
    for i, (a, b) in enumerate(zip(args.before, args.after)):
        try:
            before, after = (metric(rev, args.checkpoint, args.mode) for rev in (a, b))
            pair = align(*(t[~t["family"].isin(args.exclude)] for t in (before, after)))
        except ValueError as err:  # align refuses two runs that scored different problems
            raise SystemExit(f"bench/ab.py: {a} vs {b}: {err} (not the same seed?)")
        runs[f"{a} -> {b}"] = paired_bootstrap(pair["b"], pair["a"], pair["family"])
        pooled.append(pair.assign(problem_id=f"{i}:" + pair["problem_id"]))
    both = pd.concat(pooled, ignore_index=True)
    runs["pooled"] = paired_bootstrap(both["b"], both["a"], both["family"])

    what = {"format": "format compliance", "generation": "generation accuracy"}.get(
        args.metric, f"{args.mode} log-likelihood")
    left_out = f", without {', '.join(args.exclude)}" if args.exclude else ""
    print(f"{args.checkpoint} ({what}{left_out}), after - before, 95% paired bootstrap")
    for name, table in runs.items():
        print(f"\n{name}")
        print(table[["family", "n", "diff", "low", "high", "p_value"]].round(3).to_string(index=False))
    summary = {name: {k: round(float(table[table["family"] == MEAN].iloc[0][k]), 4)
                      for k in ("diff", "low", "high", "p_value")} for name, table in runs.items()}
    print(json.dumps({"checkpoint": args.checkpoint, "metric": args.metric, "mode": args.mode,
                      "excluded": args.exclude, "mean": summary}))


if __name__ == "__main__":
    main()
