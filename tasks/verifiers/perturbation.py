"""PerturbQA soft verifier: a smoothed-rate logistic model of P(DE) and P(up) from training pairs.

For a pair (cell line, perturbation, downstream gene) the model reads three empirical-Bayes rates
from training pairs only, each shrunk towards the line's base rate by ``prior_strength`` pseudo
pairs: the gene's rate in this line (how often it responds to any knockdown), the perturbation's
rate in this line (how strong the knockdown is), and the perturbation's rate in other lines
(PerturbQA's test perturbations are unseen in their line but often trained in another). A
logistic regression per task (``de``: P(DE), ``dir``: P(up)) combines their logits with
"is it known" flags. It is fitted on leave-one-out rates, and for a random half of the training
perturbations with their in-line rate hidden, so it has learnt both the seen case (GRPO on the
training split) and the unseen case (the test split). Stored as parquet (counts) + JSON.

>>> round(shrunk(3, 10, 0.1, 10), 3)
0.2
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TASKS = ("de", "dir")
FEATURES = ["base_logit", "gene_logit", "gene_known", "pert_logit", "pert_known", "other_logit",
            "other_known"]


def shrunk(k, n, prior, strength):
    """Rate k/n shrunk towards ``prior`` by ``strength`` pseudo-observations."""
    return (k + strength * prior) / (n + strength)


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


@dataclass
class PerturbationModel:
    gene_counts: pd.DataFrame  # cell_line, task, gene, k, n
    pert_counts: pd.DataFrame  # cell_line, task, pert, k, n
    base_rates: dict  # "line|task" -> rate
    coef: dict  # task -> {"intercept": float, feature: weight}
    prior_strength: float

    def __post_init__(self):
        self._gene = {(r.cell_line, r.task, r.gene): (r.k, r.n) for r in self.gene_counts.itertuples()}
        self._pert = {(r.cell_line, r.task, r.pert): (r.k, r.n) for r in self.pert_counts.itertuples()}
        other: dict = {}
        for (line, task, pert), (k, n) in self._pert.items():
            other.setdefault((task, pert), []).append((line, k, n))
        self._other = other

    def _counts(self, line: str, task: str, pert: str, gene: str) -> tuple:
        k, n = self._gene.get((line, task, gene), (0, 0))
        pk, pn = self._pert.get((line, task, pert), (0, 0))
        others = [(k_, n_) for l_, k_, n_ in self._other.get((task, pert), []) if l_ != line]
        return k, n, pk, pn, sum(k_ for k_, _ in others), sum(n_ for _, n_ in others)

    def probability(self, line: str, task: str, pert: str, gene: str) -> float:
        """P(DE) for task ``de``, P(up) for task ``dir``."""
        if task not in TASKS:
            raise ValueError(f"perturbation task {task!r}: expected de or dir")
        prior = self.base_rates.get(f"{line}|{task}", self.base_rates[f"*|{task}"])
        counts = [np.array([c], dtype=float) for c in self._counts(line, task, pert, gene)]
        x = _design(np.array([prior]), *counts, self.prior_strength)[0]
        w = self.coef[task]
        z = w["intercept"] + sum(w[f] * v for f, v in zip(FEATURES, x))
        return float(1 / (1 + np.exp(-z)))

    def reward(self, line: str, task: str, pert: str, gene: str, claimed: str) -> float:
        """Probability the model gives the claimed answer (yes/no for DE, up/down for direction)."""
        p = self.probability(line, task, pert, gene)
        positive, negative = ("yes", "no") if task == "de" else ("up", "down")
        if claimed == positive:
            return p
        if claimed == negative:
            return 1.0 - p
        return 0.0

    def perturbations(self) -> set[tuple[str, str]]:
        """(cell line, perturbation) pairs the model has training counts for."""
        return set(zip(self.pert_counts["cell_line"], self.pert_counts["pert"]))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.gene_counts.to_parquet(folder / "perturb_gene_counts.parquet", index=False)
        self.pert_counts.to_parquet(folder / "perturb_pert_counts.parquet", index=False)
        (folder / "perturbation.json").write_text(json.dumps(
            {"base_rates": self.base_rates, "coef": self.coef, "prior_strength": self.prior_strength},
            indent=2))

    @classmethod
    def load(cls, folder: Path) -> "PerturbationModel":
        meta = json.loads((folder / "perturbation.json").read_text())
        return cls(pd.read_parquet(folder / "perturb_gene_counts.parquet"),
                   pd.read_parquet(folder / "perturb_pert_counts.parquet"),
                   meta["base_rates"], meta["coef"], meta["prior_strength"])


def fit_perturbation(pairs: pd.DataFrame, prior_strength: float = 10.0, seed: int = 0) -> PerturbationModel:
    """Fit on training pairs only (columns cell_line, task, pert, gene, label)."""
    from sklearn.linear_model import LogisticRegression

    if pairs.empty:
        raise ValueError("perturbation model: no training pairs")
    gene_counts = (pairs.groupby(["cell_line", "task", "gene"])["label"].agg(k="sum", n="size")
                   .reset_index())
    pert_counts = (pairs.groupby(["cell_line", "task", "pert"])["label"].agg(k="sum", n="size")
                   .reset_index())
    base = pairs.groupby(["cell_line", "task"])["label"].mean()
    base_rates = {f"{line}|{task}": float(r) for (line, task), r in base.items()}
    base_rates.update({f"*|{task}": float(r) for task, r in pairs.groupby("task")["label"].mean().items()})

    rng = np.random.default_rng(seed)
    perts = pairs[["cell_line", "pert"]].drop_duplicates()
    hidden = perts[rng.random(len(perts)) < 0.5]
    hidden_keys = set(zip(hidden["cell_line"], hidden["pert"]))

    coef = {}
    for task in TASKS:
        rows = pairs[pairs["task"] == task]
        if rows["label"].nunique() < 2:
            raise ValueError(f"perturbation model: task {task} needs both labels in training")
        x, y = _loo_features(rows, gene_counts, pert_counts, base_rates, prior_strength, hidden_keys)
        clf = LogisticRegression(C=1.0, max_iter=1000).fit(x, y)
        coef[task] = {"intercept": float(clf.intercept_[0]),
                      **{f: float(w) for f, w in zip(FEATURES, clf.coef_[0])}}
    return PerturbationModel(gene_counts, pert_counts, base_rates, coef, prior_strength)


def _loo_features(rows, gene_counts, pert_counts, base_rates, a, hidden_keys):
    """Features of training rows with each row's own label left out (and hidden perts unseen)."""
    y = rows["label"].to_numpy()
    prior = np.array([base_rates[f"{l}|{t}"] for l, t in zip(rows["cell_line"], rows["task"])])
    g = rows.merge(gene_counts, on=["cell_line", "task", "gene"], how="left")
    gk, gn = g["k"].to_numpy() - y, g["n"].to_numpy() - 1
    p = rows.merge(pert_counts, on=["cell_line", "task", "pert"], how="left")
    pk, pn = p["k"].to_numpy() - y, p["n"].to_numpy() - 1
    hidden = np.array([(l, q) in hidden_keys for l, q in zip(rows["cell_line"], rows["pert"])])
    pk, pn = np.where(hidden, 0, pk), np.where(hidden, 0, pn)
    totals = pert_counts.groupby(["task", "pert"])[["k", "n"]].sum().reset_index()
    o = rows.merge(totals, on=["task", "pert"], how="left")
    ok, on = o["k"].to_numpy() - p["k"].to_numpy(), o["n"].to_numpy() - p["n"].to_numpy()
    return _design(prior, gk, gn, pk, pn, ok, on, a), y


def _design(prior, gk, gn, pk, pn, ok, on, a):
    """Model inputs: the line's base logit, then each rate's logit relative to it and a known flag."""
    lp = _logit(prior)
    return np.column_stack([lp, _logit(shrunk(gk, gn, prior, a)) - lp, (gn > 0).astype(float),
                            _logit(shrunk(pk, pn, prior, a)) - lp, (pn > 0).astype(float),
                            _logit(shrunk(ok, on, prior, a)) - lp, (on > 0).astype(float)])
