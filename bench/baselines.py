"""Non-LM baselines per family: test accuracy with Wilson 95% intervals, fitted on the train split.

    PYTHONPATH=$PWD python bench/baselines.py --problems data/problems/problems.parquet [--json out.json]

Prints one table: per family, the test problems, how many have no closed option set (open
answers, not scored), the expected chance accuracy (mean of 1/n options), then each baseline of
:mod:`tasks.evaluate.baselines` that answers there: accuracy [low, high] over the scored problems.
A checkpoint's accuracy means something only where it clears these intervals.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from tasks.evaluate.baselines import baseline_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="data/problems/problems.parquet")
    parser.add_argument("--json", help="also write the table here as JSON records")
    parser.add_argument("--by-answer-type", action="store_true",
                        help="one row per family and answer type (cell_type: label vs multiple choice)")
    args = parser.parse_args()
    problems = pd.read_parquet(args.problems)
    by = ("family", "answer_type") if args.by_answer_type else ("family",)
    table = baseline_table(problems, by=by)
    table["group"] = table[list(by)].astype(str).agg("/".join, axis=1)
    counts = problems.groupby(["family", "split"]).size().unstack(fill_value=0)
    print(f"{args.problems}: {len(problems)} problems, "
          f"{int(counts.get('train', pd.Series()).sum())} train / {int(counts.get('test', pd.Series()).sum())} test")
    print(f"{'group':38} {'baseline':20} {'test':>5} {'open':>5} {'scored':>6} {'chance':>7}  "
          f"{'accuracy':>8}  95% Wilson")
    for group, rows in table.groupby("group", sort=True):
        for r in rows.itertuples(index=False):
            print(f"{group:38} {r.baseline:20} {r.n_test:5d} {r.not_scorable:5d} {r.scored:6d} "
                  f"{r.expected_chance:7.3f}  {r.accuracy:8.3f}  [{r.low:.3f}, {r.high:.3f}]")
    test = problems[problems["split"] == "test"]
    groups = test[list(by)].astype(str).agg("/".join, axis=1)
    for group in sorted(set(groups) - set(table["group"])):
        n = int((groups == group).sum())
        print(f"{group:38} {'(open answers: none)':20} {n:5d} {n:5d} {0:6d}")
    if args.json:
        Path(args.json).write_text(json.dumps(table.drop(columns="group").to_dict("records"), indent=2))


if __name__ == "__main__":
    main()
