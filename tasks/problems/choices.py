"""Multiple-choice construction: distractors, a uniform answer position, and the surface-cue audit.

Distractors are drawn in proportion to how often each option is itself a right answer, so an
option's text says nothing about whether it is right; answer positions are dealt from shuffled
blocks of all positions, so every letter is right equally often. :func:`surface_cue_accuracy`
checks both claims: a logistic regression on features of each choice alone (length, length rank
and how far it is from the middle, position, word overlap with the prompt, how often the text is
an option, how often it is a right answer in the train split) should stay at chance, above or
below. The last feature is the prior a model learns from its training answers; :func:`same_split`
keeps it from being a cue, as options named after entities are drawn from the problem's own split
only (a test entity is never a train answer, so train entities among a test problem's distractors
would mark them as wrong, and a model that learnt the train answers would pick against the right
one).

>>> rng = np.random.default_rng(0)
>>> deal = PositionDealer(4, rng)
>>> sorted(deal() for _ in range(8))
[0, 0, 1, 1, 2, 2, 3, 3]
>>> arrange("right", ["x", "y", "z"], 2)
['x', 'y', 'right', 'z']
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

_WORD = re.compile(r"[a-z0-9]+")


class PositionDealer:
    """Answer positions from successive random permutations of ``range(n)``: exactly uniform."""

    def __init__(self, n: int, rng: np.random.Generator):
        self.n, self.rng, self._block = n, rng, []

    def __call__(self) -> int:
        if not self._block:
            self._block = list(self.rng.permutation(self.n))
        return int(self._block.pop())


def draw_distractors(answer: str, pool: list[str], k: int, rng: np.random.Generator,
                     weights: dict[str, float] | None = None,
                     allowed=None) -> list[str] | None:
    """``k`` distinct options from ``pool`` other than ``answer`` (weighted; ``None`` if too few).

    ``allowed(option) -> bool`` restricts the pool (e.g. a different TF class).
    """
    options = [o for o in dict.fromkeys(pool) if o != answer and (allowed is None or allowed(o))]
    if len(options) < k:
        return None
    w = np.array([(weights or {}).get(o, 1.0) for o in options], dtype=float)
    w = w / w.sum() if w.sum() > 0 else None
    picked = rng.choice(len(options), size=k, replace=False, p=w)
    return [options[i] for i in picked]


def arrange(answer: str, distractors: list[str], position: int) -> list[str]:
    """Insert the answer at ``position`` among the distractors (kept in drawn order)."""
    out = list(distractors)
    out.insert(position, answer)
    return out


def answer_frequencies(answers: list[str]) -> dict[str, float]:
    """Weights for :func:`draw_distractors`: how often each option is a right answer."""
    counts = Counter(answers)
    return {a: float(c) for a, c in counts.items()}


class UsageBalancer:
    """Down-weights options already drawn as distractors, so that every option of a pool is a
    distractor about equally often, whatever else steers the draw (length bands, TF classes,
    name similarity); otherwise how often a text is offered would hint at whether it is right."""

    def __init__(self):
        self.used: Counter = Counter()

    def weights(self, options) -> np.ndarray:
        return np.array([1.0 / (1 + self.used[o]) ** 2 for o in options])

    def record(self, picked) -> None:
        self.used.update(picked)


def word_overlap(option: str, question: str) -> float:
    """Share of an option's words that occur in the question (a surface cue the audit uses).

    >>> word_overlap("Spinocerebellar ataxia 12", "Ataxia (HP:0001251)")
    0.3333333333333333
    """
    option_words = words(option)
    return len(option_words & words(question)) / max(len(option_words), 1)


def words(text: str) -> set[str]:
    """Lower-case alphanumeric words, the unit of :func:`word_overlap`."""
    return set(_WORD.findall(text.lower()))


def draw_by_rank(candidates, sizes, size: float, k: int, rank: int, rng: np.random.Generator,
                 weights=None, width: int = 1) -> tuple[list, int] | None:
    """``k`` distractors from ``candidates`` (parallel ``sizes``) such that the answer (``size``)
    is ``rank``-th from the smallest option: ``rank`` of the ``width * rank`` nearest smaller
    candidates and ``k - rank`` of the ``width * (k - rank)`` nearest larger ones (ties on a random
    side), drawn by ``weights`` (for example ``UsageBalancer``'s, so that no candidate is offered
    far more often than others: how often a text is an option would say it is not the answer).
    Drawn at random from a band around the answer's size instead, the answer would be the band's
    centre and mostly a middle size, and a model scoring options by likelihood (which favours
    short strings) would pick against it. When ``rank`` cannot be had (too few smaller or larger),
    the nearest rank that can; returns the picks and the rank used, or None when there are fewer
    than ``k`` candidates.

    >>> rng = np.random.default_rng(0)
    >>> picks, used = draw_by_rank(["a", "b", "c", "d", "e"], [1, 2, 4, 5, 6], 3, 3, 1, rng)
    >>> sorted(picks), used
    (['b', 'c', 'd'], 1)
    >>> draw_by_rank(["a", "b", "c", "d"], [1, 2, 4, 5], 3, 3, 0, rng)[1]  # only two are larger
    1
    """
    candidates, sizes = list(candidates), np.asarray(sizes, dtype=float)
    if len(candidates) < k:
        return None
    ties = sizes == size
    smaller = (sizes < size) | (ties & (rng.random(len(sizes)) < 0.5))
    order = np.lexsort((rng.random(len(sizes)), sizes))  # by size, ties in random order
    below, above = order[smaller[order]], order[~smaller[order]]
    feasible = [r for r in range(k + 1) if len(below) >= r and len(above) >= k - r]
    used = min(feasible, key=lambda r: (abs(r - rank), r))
    w = np.ones(len(candidates)) if weights is None else np.asarray(weights, dtype=float)
    picks = []
    for pool, n in ((below[::-1], used), (above, k - used)):  # nearest first
        pool = pool[:width * n]
        if n:
            picks += list(rng.choice(pool, size=n, replace=False, p=w[pool] / w[pool].sum()))
    return [candidates[i] for i in picks], used


def same_split(candidates, split_of_candidate, split: str) -> list:
    """The candidates in ``split`` (``split_of_candidate(c)`` names each one's split): the pool of
    distractors named after split entities (motifs, genes, diseases, CDSs).

    >>> same_split(["m1", "m2", "m3"], {"m1": "train", "m2": "test", "m3": "test"}.get, "test")
    ['m2', 'm3']
    """
    return [c for c in candidates if split_of_candidate(c) == split]


def _choice_features(df: pd.DataFrame, train_answers: Counter) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    option_counts = Counter(c for cs in df["choices"] for c in cs)
    rows, labels, groups = [], [], []
    for g, (prompt, answer, choices) in enumerate(zip(df["prompt"], df["answer"], df["choices"])):
        # the prompt lists the choices; overlap is measured against the question part only
        question = prompt.split("\nA. ")[0]
        lengths = np.array([len(c) for c in choices], dtype=float)
        ranks = lengths.argsort().argsort() / max(len(choices) - 1, 1)
        for i, c in enumerate(choices):
            overlap = word_overlap(c, question)
            rows.append([np.log1p(len(c)), ranks[i], abs(ranks[i] - 0.5), i / max(len(choices) - 1, 1),
                         float(i == 0), float(i == len(choices) - 1), overlap,
                         np.log1p(option_counts[c]), (lengths[i] - lengths.mean()) / (lengths.std() + 1),
                         np.log1p(train_answers[c])])
            labels.append(int(c == answer))
            groups.append(g)
    return np.array(rows), np.array(labels), np.array(groups)


def surface_cue_accuracy(train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Accuracy of a choice-only classifier on multiple-choice ``test`` rows, and chance level.

    Trained on ``train`` rows (one example per choice), it picks the highest-scoring choice of
    each test question.
    """
    from sklearn.linear_model import LogisticRegression

    train_answers = Counter(train["answer"])
    X, y, _ = _choice_features(train, train_answers)
    Xt, yt, gt = _choice_features(test, train_answers)
    clf = LogisticRegression(max_iter=1000).fit(X, y) if len(set(y)) > 1 else None
    scores = clf.decision_function(Xt) if clf is not None else np.zeros(len(yt))
    correct = [int(yt[gt == g][np.argmax(scores[gt == g])]) for g in np.unique(gt)]
    chance = float(np.mean([1 / len(c) for c in test["choices"]]))
    return {"accuracy": float(np.mean(correct)), "chance": chance, "n": len(correct)}
