"""Baselines computed once here, for the evaluate stage to compare against, and PerturbQA's metric.

:func:`per_gene_auroc` is the benchmark's score: ROC AUC per downstream gene over its test pairs,
skipping genes whose labels are all one class, averaged over genes. A score that depends only on
the gene (e.g. the gene's training DE rate) is constant within each gene and scores exactly 0.5
under this metric, so the non-LLM baseline here ranks pairs by the knockdown's training neighbours
(:func:`tasks.problems.perturb.neighbour_scores`); the gene-rate score is reported with a pooled
AUROC, where it is informative.

>>> per_gene_auroc(["g", "g", "g", "g", "h", "h"], [0, 0, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.9, 0.5, 0.2])
{'auroc': 1.0, 'genes': 1, 'genes_skipped': 1}
>>> auroc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5])
0.5
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tasks.problems.perturb import neighbour_scores


def auroc(labels, scores) -> float:
    """ROC AUC (scikit-learn; ties count one half).

    >>> auroc([0, 1, 1, 0], [0.1, 0.9, 0.5, 0.5])
    0.875
    """
    y = np.asarray(labels, dtype=int)
    if y.min() == y.max():
        raise ValueError("AUROC needs both labels")
    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


def per_gene_auroc(genes, labels, scores) -> dict:
    """PerturbQA's metric: mean over downstream genes of the AUROC of that gene's pairs."""
    df = pd.DataFrame({"gene": list(genes), "label": list(labels), "score": list(scores)})
    values, skipped = [], 0
    for _, g in df.groupby("gene", sort=True):
        if g["label"].nunique() < 2:
            skipped += 1
            continue
        values.append(auroc(g["label"], g["score"]))
    return {"auroc": float(np.mean(values)) if values else float("nan"), "genes": len(values),
            "genes_skipped": skipped}


def _majority_prediction(train: pd.DataFrame, row) -> str:
    answers = Counter(train["answer"])
    if row.answer_type == "multiple_choice":
        # a right answer seen once in training is no "majority": fall back to the commonest letter
        offered = [a for a, n in answers.most_common() if n > 1 and a in row.choices]
        if offered:
            return offered[0]
        letter = Counter(list(c).index(a) for a, c in zip(train["answer"], train["choices"]))
        pos = min(letter.most_common(1)[0][0], len(row.choices) - 1)
        return row.choices[pos]
    return answers.most_common(1)[0][0]


def _random_accuracy(train: pd.DataFrame, row) -> float:
    if row.answer_type == "multiple_choice":
        return 1 / len(row.choices)
    if row.answer_type == "yes_no":
        return 0.5
    labels = set(train["answer"])  # guess uniformly among the answers seen in training
    return (row.answer in labels) / len(labels)


def family_baselines(problems: pd.DataFrame) -> dict:
    """Majority-class and random-choice accuracy on the test split, per family and answer type."""
    out = {}
    for (family, kind), group in problems.groupby(["family", "answer_type"], sort=True):
        train, test = group[group["split"] == "train"], group[group["split"] == "test"]
        if not len(train) or not len(test):
            continue
        majority = [(_majority_prediction(train, r) == r.answer) for r in test.itertuples()]
        rand = [_random_accuracy(train, r) for r in test.itertuples()]
        out.setdefault(family, {})[kind] = {"test_n": len(test),
                                            "majority_accuracy": round(float(np.mean(majority)), 4),
                                            "random_accuracy": round(float(np.mean(rand)), 4)}
    return out


def perturb_baselines(problems: pd.DataFrame, pairs: pd.DataFrame) -> dict:
    """Neighbour-score per-gene AUROC on the sampled test problems and on the full test split."""
    out = {}
    for (line, task), table in pairs.groupby(["cell_line", "task"], sort=True):
        de_train = pairs[(pairs["cell_line"] == line) & (pairs["task"] == "de") & (pairs["split"] == "train")]
        train, test = table[table["split"] == "train"], table[table["split"] == "test"]
        full = neighbour_scores(de_train, train, test)
        mine = problems[(problems["family"] == f"perturb_{task}") & (problems["split"] == "test")]
        ev = [json.loads(e) for e in mine["evidence"]]
        ev = [e for e in ev if e["cell_line"] == line]
        sampled = per_gene_auroc([e["gene"] for e in ev], [e["label"] for e in ev],
                                 [e["neighbour_score"] for e in ev]) if ev else None
        pooled = auroc(full["label"], full["gene_rate"]) if full["label"].nunique() == 2 else None
        out[f"{line}-{task}"] = {
            "sampled_test": sampled,
            "full_test": per_gene_auroc(full["gene"], full["label"], full["score"]),
            "full_test_gene_rate_pooled_auroc": pooled,
            "full_test_pairs_with_neighbours": round(float((full["n_neighbours"] > 0).mean()), 4)}
    return out
