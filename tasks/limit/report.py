"""Tables, recall-versus-dimension curves and the written report of the limit stage.

>>> rows = {"toy": [{"retriever": "dense@8", "family": "dense", "dim": 8, "recall_at_2": 10.0},
...                 {"retriever": "dense@16", "family": "dense", "dim": 16, "recall_at_2": 20.0}]}
>>> curves(rows)[("dense", "toy")]["recall_at_2"].tolist()
[10.0, 20.0]
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.limit.metrics import markdown_table

CURVE_FAMILIES = ("dense", "late")  # retrievers evaluated at several dimensions
CURVE_COLUMNS = ["dim", "recall_at_2", "recall_at_10", "recall_at_20", "recall_at_100", "ndcg_at_10"]


def tables(results: Mapping[str, list[dict]], skipped: Mapping[str, str]) -> str:
    parts = [markdown_table({r["retriever"]: r for r in rows}, title=name) for name, rows in results.items()]
    for name, reason in skipped.items():
        parts.append(f"_{name} skipped: {reason}._")
    return "\n\n".join(parts) + "\n"


def curves(results: Mapping[str, list[dict]]) -> dict[tuple[str, str], pd.DataFrame]:
    """(family, dataset) -> one row per dimension, for the families swept over dimensions."""
    out = {}
    for dataset, rows in results.items():
        for family in CURVE_FAMILIES:
            picked = [r for r in rows if r["family"] == family and r["dim"] is not None]
            if picked:
                df = pd.DataFrame(picked).sort_values("dim")
                out[(family, dataset)] = df[[c for c in CURVE_COLUMNS if c in df.columns]].reset_index(drop=True)
    return out


def curve_file_name(family: str, dataset: str) -> str:
    return f"{family}_{dataset}.csv"


def plot_recall_vs_dim(results: Mapping[str, list[dict]], family: str):
    """Recall@2 and @10 against dimension per dataset; BM25's recall@2 as a dotted reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (dataset, rows) in enumerate(results.items()):
        color = f"C{i}"
        df = curves({dataset: rows}).get((family, dataset))
        if df is None:
            continue
        ax.plot(df["dim"], df["recall_at_2"], "o-", color=color, label=f"{dataset} R@2")
        ax.plot(df["dim"], df["recall_at_10"], "s--", color=color, alpha=0.6, label=f"{dataset} R@10")
        bm25 = [r["recall_at_2"] for r in rows if r["family"] == "bm25"]
        if bm25:
            ax.axhline(bm25[0], color=color, linestyle=":", linewidth=1, label=f"{dataset} BM25 R@2")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("embedding dimension d (truncated, renormalised)")
    ax.set_ylabel("recall (%)")
    ax.set_ylim(0, 102)
    ax.set_title(f"{family}: zero-shot combinatorial recall at dimension d")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def dimension_for(n_docs: int, fit: list[float], max_dim: int = 4096) -> int | None:
    """Smallest d whose fitted critical n reaches ``n_docs`` (an extrapolation of the fit).

    >>> dimension_for(19, [-10.0, 4.0, 0.05, 0.004])
    7
    """
    poly = np.polynomial.Polynomial(fit)
    for d in range(1, max_dim + 1):
        if poly(d) >= n_docs:
            return d
    return None


def report_markdown(results: Mapping[str, list[dict]], skipped: Mapping[str, str], free: Mapping[int, int],
                    fit: list[float], set_sizes: Mapping[str, tuple[int, int]], table_md: str) -> str:
    """The stage's written report; every number comes from this run's results."""
    lines = ["# LIMIT-style retrieval benchmark", "",
             "Weller et al. (2025, arXiv 2508.21038) argue that a single-vector embedder of dimension d "
             "can only represent a bounded number of top-k combinations of documents, and build LIMIT, "
             "where every pair of a few dozen documents is the answer to some query. Later work disputes "
             "the strong reading of that argument (that embeddings of realistic size cannot solve some "
             "retrieval tasks), so the numbers below are **zero-shot combinatorial recall at dimension d** "
             "for specific models, not proofs that no d-dimensional embedding could solve a task.", "",
             "## Sets", ""]
    for name, (n_docs, n_queries) in set_sizes.items():
        lines.append(f"- `{name}`: {n_docs} documents, {n_queries} queries evaluated.")
    lines += ["", "## Results (percent)", "", table_md, "",
              "## What the numbers mean", ""]
    for dataset, rows in results.items():
        by_family: dict[str, list[dict]] = {}
        for r in rows:
            by_family.setdefault(r["family"], []).append(r)
        said = []
        if "bm25" in by_family:
            said.append(f"BM25 reaches R@2 {by_family['bm25'][0]['recall_at_2']:.1f}")
        if "dense" in by_family:
            d = sorted(by_family["dense"], key=lambda r: r["dim"])
            said.append(f"the dense embedder goes from R@2 {d[0]['recall_at_2']:.1f} at d={d[0]['dim']} "
                        f"to {d[-1]['recall_at_2']:.1f} at d={d[-1]['dim']}")
        if "late" in by_family:
            best = max(by_family["late"], key=lambda r: r["recall_at_2"])
            said.append(f"late interaction over the same model's token vectors reaches "
                        f"{best['recall_at_2']:.1f} (at {best['dim']} dimensions per token)")
        if said:
            lines.append(f"- On `{dataset}`, " + "; ".join(said) + ".")
    lines += ["- The queries are lexical look-ups, so BM25 is near its ceiling; single-vector embedders have "
              "to place each document so that every pair sharing an attribute outranks all others, and "
              "recall rises with d. Late interaction keeps one vector per token and does not compress a "
              "document into one point, which is why it tracks BM25 here.",
              "- These are small sets: a few dozen documents. LIMIT's full 50k-document tier (our generator's "
              "`n_docs`) is the harder test; the paper reports BM25 85.7 R@2 there.", "",
              "## Free-embedding best case", "",
              "Vectors optimised directly on the k=2 all-pairs qrels (Adam, InfoNCE over all documents, "
              "unit vectors): the largest number of documents n whose every pair is retrieved exactly "
              "(100% top-2 accuracy) at each d.", "",
              "| d | critical n |", "|---:|---:|"]
    lines += [f"| {d} | {n} |" for d, n in sorted(free.items())]
    if len(free) >= 2:
        terms = [f"{c:.3g}" if i == 0 else f"{c:.3g}·d" + ("" if i == 1 else f"^{i}") for i, c in enumerate(fit)]
        lines += ["", f"Least-squares fit (degree {len(fit) - 1}): n(d) ≈ " + " + ".join(terms).replace("+ -", "- ") + "."]
        for name, (n_docs, _) in set_sizes.items():
            d = dimension_for(n_docs, fit)
            if d is not None:
                lines.append(f"- Extrapolated, the fit reaches `{name}`'s {n_docs} documents at about d = {d}: "
                             "free vectors of that size could represent its pairs, so a trained embedder's low "
                             "zero-shot recall there at larger d points at what the model learned, not at d alone.")
    lines += ["", "What this does not mean: the free-embedding n is what one optimiser found (a lower bound "
              "on what is representable), the fit is an extrapolation from small d, and recall on a "
              "synthetic set of attribute look-ups does not predict recall on natural queries."]
    if skipped:
        lines += ["", "## Skipped", ""] + [f"- {name}: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines) + "\n"


def write_curves(results: Mapping[str, list[dict]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (family, dataset), df in curves(results).items():
        path = folder / curve_file_name(family, dataset)
        df.to_csv(path, index=False)
        paths.append(path)
    return paths
