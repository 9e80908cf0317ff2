"""Do the soft verifiers carry signal? Mean reward of the right answer vs a random wrong one.

Fits the verifiers on the problems' training split (or loads a fitted folder), then for every test
problem of a family with a soft verifier scores two completions through the same path GRPO uses
(answer tag -> parsing -> routing): one answering the reference answer, one answering a random
wrong choice (the opposite for yes/no and up/down; another training cell type for open labels).

    PYTHONPATH=$PWD python bench/verifiers.py --problems data/problems/problems.parquet \
        --corpus data/corpus [--fitted DIR] [--split test] [--out reports/bench_verifiers.csv]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common.params import load_params
from tasks.verifiers.compose import SOFT_FAMILIES, score
from tasks.verifiers.fitted import fit_verifiers, load_verifiers

OPPOSITE = {"yes": "no", "no": "yes", "up": "down", "down": "up"}


def wrong_answer(row, classes: list[str], rng: np.random.Generator) -> str | None:
    choices = [c for c in (row["choices"] if row["choices"] is not None else []) if c != row["answer"]]
    if choices:
        return str(rng.choice(choices))
    if row["answer"] in OPPOSITE:
        return OPPOSITE[row["answer"]]
    others = [c for c in classes if c != row["answer"]]
    return str(rng.choice(others)) if others else None


def _gene_group(row) -> str | None:
    if not row["family"].startswith("perturb_"):
        return None
    ev = json.loads(row["evidence"])
    return f"{row['family']}:{ev['cell_line']}:{ev['gene']}"


def per_gene_auroc(df: pd.DataFrame) -> dict[str, float]:
    """PerturbQA's metric: AUROC per downstream gene over its test pairs, averaged per family."""
    from sklearn.metrics import roc_auc_score

    pert = df[df["group"].notna()].copy()
    pert["p_positive"] = np.where(pert["positive"], pert["right"], pert["wrong"])
    out = {}
    for family, rows in pert.groupby("family"):
        aucs = [roc_auc_score(g["positive"], g["p_positive"]) for _, g in rows.groupby("group")
                if g["positive"].nunique() == 2]
        out[family] = round(float(np.mean(aucs)), 3) if aucs else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--problems", default="data/problems/problems.parquet")
    ap.add_argument("--corpus", default="data/corpus")
    ap.add_argument("--fitted", default=None, help="a folder from fit_verifiers; fitted here if absent")
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    settings = load_params().verifiers
    problems = pd.read_parquet(args.problems)
    folder = Path(args.fitted or tempfile.mkdtemp(prefix="verifiers-bench-")) / "fitted"
    if not (folder / "manifest.json").exists():
        t = time.time()
        fit_verifiers(problems, args.corpus, folder, settings, seed=args.seed)
        print(f"fitted in {time.time() - t:.1f}s -> {folder}")
    bundle = load_verifiers(folder, settings)
    classes = list(bundle.cell_type.classes) if bundle.cell_type else []

    rng = np.random.default_rng(args.seed)
    family_of = {f: name for name, fams in SOFT_FAMILIES.items() for f in fams}
    rows = problems[(problems["split"] == args.split) & problems["family"].isin(family_of)]
    records = []
    for row in rows.to_dict("records"):
        name = family_of[row["family"]]
        wrong = wrong_answer(row, classes, rng)
        if wrong is None:
            continue
        t = time.time()
        right_r = score(name, {**row, "completion": f"<think>.</think><answer>{row['answer']}</answer>"},
                        bundle, settings)
        wrong_r = score(name, {**row, "completion": f"<think>.</think><answer>{wrong}</answer>"},
                        bundle, settings)
        if right_r is None or wrong_r is None:
            continue
        records.append({"family": row["family"], "verifier": name, "answer_type": row["answer_type"],
                        "right": right_r, "wrong": wrong_r, "seconds": (time.time() - t) / 2,
                        "positive": row["answer"] in ("yes", "up"), "group": _gene_group(row)})
    df = pd.DataFrame(records)
    summary = df.groupby(["verifier", "family"]).agg(
        n=("right", "size"), mean_right=("right", "mean"), mean_wrong=("wrong", "mean"),
        right_above_wrong=("right", lambda s: float((s > df.loc[s.index, "wrong"]).mean())),
        ms_per_call=("seconds", lambda s: 1000 * s.mean())).round(3)
    print(f"split={args.split}  problems scored={len(df)}")
    print(summary.to_string())
    print("PerturbQA per-gene AUROC of P(yes/up):", per_gene_auroc(df))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        summary.reset_index().to_csv(args.out, index=False)
        print(json.dumps({"written": args.out}))


if __name__ == "__main__":
    main()
