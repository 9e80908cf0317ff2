"""Ranking metrics as the LIMIT paper reports them, and the markdown table of a run.

recall@k is the fraction of a query's relevant documents found in its top k, averaged over
queries (with k = 2 relevant documents per query, recall@2 = 1 only when both are ranked first).
nDCG@10 uses the qrel score as the gain and log2(rank + 1) as the discount, like pytrec_eval.

>>> ranked = [["a", "x", "b"], ["y", "z", "c"]]
>>> relevant = [{"a": 1, "b": 1}, {"c": 1}]
>>> recall_at_k(ranked, relevant, 2), recall_at_k(ranked, relevant, 3)
(0.25, 1.0)
>>> round(ndcg_at_k([["x", "a"]], [{"a": 1}], 10), 4)
0.6309
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

RECALL_KS = (2, 10, 20, 100)
NDCG_K = 10


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]], k: int) -> float:
    """Mean over queries of |top-k ∩ relevant| / |relevant| (relevant: qrel score > 0)."""
    total = 0.0
    for ranking, qrels in zip(ranked, relevant, strict=True):
        rel = {doc for doc, score in qrels.items() if score > 0}
        total += len(rel.intersection(ranking[:k])) / len(rel)
    return total / len(ranked)


def ndcg_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]], k: int = NDCG_K) -> float:
    """Mean nDCG@k with graded gains (the qrel score) and a log2 discount."""
    total = 0.0
    for ranking, qrels in zip(ranked, relevant, strict=True):
        dcg = sum(qrels.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranking[:k]))
        ideal = sorted((s for s in qrels.values() if s > 0), reverse=True)[:k]
        idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
        total += dcg / idcg
    return total / len(ranked)


def score_run(ranked: Sequence[Sequence[str]], relevant: Sequence[Mapping[str, int]]) -> dict[str, float]:
    """recall@2/10/20/100 and nDCG@10 in percent (the paper's unit), rounded to 0.01.

    >>> score_run([["a", "b"]], [{"a": 1}])["recall_at_2"]
    100.0
    """
    out = {f"recall_at_{k}": round(100 * recall_at_k(ranked, relevant, k), 2) for k in RECALL_KS}
    out[f"ndcg_at_{NDCG_K}"] = round(100 * ndcg_at_k(ranked, relevant, NDCG_K), 2)
    return out


def markdown_table(results: Mapping[str, Mapping[str, float]], title: str | None = None) -> str:
    """One row per retriever, columns R@2, R@10, R@20, R@100, nDCG@10.

    >>> print(markdown_table({"bm25": {"recall_at_2": 97.8, "recall_at_10": 100, "recall_at_20": 100,
    ...                                "recall_at_100": 100, "ndcg_at_10": 98.9}}))
    | retriever | R@2 | R@10 | R@20 | R@100 | nDCG@10 |
    |---|---:|---:|---:|---:|---:|
    | bm25 | 97.8 | 100.0 | 100.0 | 100.0 | 98.9 |
    """
    keys = [f"recall_at_{k}" for k in RECALL_KS] + [f"ndcg_at_{NDCG_K}"]
    lines = [f"### {title}", ""] if title else []
    lines.append("| retriever | " + " | ".join([f"R@{k}" for k in RECALL_KS] + [f"nDCG@{NDCG_K}"]) + " |")
    lines.append("|---|" + "---:|" * len(keys))
    for name, row in results.items():
        lines.append(f"| {name} | " + " | ".join(f"{float(row[key]):.1f}" for key in keys) + " |")
    return "\n".join(lines)
