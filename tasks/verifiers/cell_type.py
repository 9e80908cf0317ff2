"""Cell-type soft verifier: a classifier on cell sentences gives P(claimed type | this cell).

Why cell sentences and not the reference expression looked up by cell id: the sentence is in the
prompt, so the verifier scores any cell a user textifies from their own AnnData (no id lookup, no
access to the matrix, no need for the cell to be a reference cell), and it sees exactly what the
policy sees. Features are rank weights: the gene at rank r of K gets 1 - r/K, so the top genes
count most and the vocabulary is the genes seen in training sentences (unseen genes are ignored).
The model is a multinomial logistic regression (scikit-learn) stored as safetensors + JSON.

>>> genes_of("<cell>CD14, LYZ, S100A8</cell>")
['CD14', 'LYZ', 'S100A8']
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from tasks.common.answers import normalise_label

_CELL = re.compile(r"<cell>(.*?)</cell>", re.S)


def genes_of(text: str) -> list[str]:
    """Gene names of the first ``<cell>...</cell>`` sentence in a text, in rank order."""
    match = _CELL.search(text)
    if not match:
        return []
    return [g.strip().upper() for g in re.split(r"[,\s]+", match.group(1)) if g.strip()]


@dataclass
class CellTypeModel:
    genes: list[str]
    classes: list[str]
    coef: np.ndarray  # classes x genes
    intercept: np.ndarray  # classes

    def __post_init__(self):
        self._gene_index = {g: i for i, g in enumerate(self.genes)}
        self._class_index = {normalise_label(c): i for i, c in enumerate(self.classes)}

    def features(self, sentences: list[list[str]]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for row, genes in enumerate(sentences):
            k = max(len(genes), 1)
            for rank, gene in enumerate(genes):
                col = self._gene_index.get(gene.upper())
                if col is not None:
                    rows.append(row)
                    cols.append(col)
                    vals.append(1.0 - rank / k)
        return sparse.csr_matrix((vals, (rows, cols)), shape=(len(sentences), len(self.genes)))

    def predict_proba(self, sentences: list[list[str]]) -> np.ndarray:
        logits = self.features(sentences) @ self.coef.T + self.intercept
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def probability(self, genes: list[str], claimed: str) -> float:
        """P(claimed type); 0.0 for a type the classifier never saw (it cannot be right)."""
        index = self._class_index.get(normalise_label(claimed))
        if index is None or not genes:
            return 0.0
        return float(self.predict_proba([genes])[0, index])

    def save(self, folder: Path) -> None:
        from safetensors.numpy import save_file

        folder.mkdir(parents=True, exist_ok=True)
        save_file({"coef": self.coef.astype(np.float32), "intercept": self.intercept.astype(np.float32)},
                  str(folder / "cell_type.safetensors"))
        (folder / "cell_type.json").write_text(json.dumps({"genes": self.genes, "classes": self.classes}))

    @classmethod
    def load(cls, folder: Path) -> "CellTypeModel":
        from safetensors.numpy import load_file

        tensors = load_file(str(folder / "cell_type.safetensors"))
        meta = json.loads((folder / "cell_type.json").read_text())
        return cls(meta["genes"], meta["classes"], tensors["coef"], tensors["intercept"])


def fit_cell_type(sentences: list[list[str]], labels: list[str], c: float = 1.0,
                  seed: int = 0) -> CellTypeModel:
    """Fit on training cells only; needs at least two cell types."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels)) < 2:
        raise ValueError(f"cell-type classifier needs at least two types in training, got {set(labels)}")
    genes = sorted({g.upper() for s in sentences for g in s})
    classes = sorted(set(labels))
    model = CellTypeModel(genes, classes, np.zeros((len(classes), len(genes))), np.zeros(len(classes)))
    clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)
    clf.fit(model.features(sentences), labels)
    coef, intercept = clf.coef_, clf.intercept_
    if len(classes) == 2:  # scikit-learn keeps one row for a binary problem
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    order = [list(clf.classes_).index(c) for c in classes]
    return CellTypeModel(genes, classes, np.asarray(coef)[order], np.asarray(intercept)[order])
