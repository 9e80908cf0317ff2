"""How sure is an accuracy, and is one checkpoint really better than another on the same problems?

* :func:`wilson`: the Wilson score interval of an accuracy ``k / n`` (scipy's
  ``binomtest(k, n).proportion_ci(method="wilson")``); it stays inside [0, 1] and is honest for
  small ``n`` and for accuracies near 0 or 1, where the normal interval is not.
* :func:`paired_bootstrap`: two checkpoints' per-problem correctness on the *same* problems,
  resampled in pairs (seeded). Per family, the mean difference ``a - b`` with a percentile
  interval; and the mean over families of the family accuracy differences (each family resampled
  within itself, so every resample keeps every family's size), which is the number a summary
  "mean accuracy over families" moves by. Pairing removes the between-problem variance the two
  share, so it detects smaller differences than comparing two separate intervals.
* :func:`align`: two per-problem result tables joined on the problem id, refusing different
  problem sets.

p-value: two-sided, ``min(1, 2 * min(share of resampled differences <= 0, share >= 0))`` (the
percentile-bootstrap test of "no difference"); ``share_le_0`` is reported too. With
``n_resamples`` R the smallest non-zero p-value is about 2/R.

>>> [round(x, 4) for x in wilson(5, 10)]
[0.2366, 0.7634]
>>> [round(x, 4) for x in wilson(0, 4)]
[0.0, 0.4899]
>>> wilson(0, 0)
(nan, nan)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

MEAN = "mean over families"


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials; (nan, nan) when n is 0."""
    from scipy.stats import binomtest

    if n == 0:
        return float("nan"), float("nan")
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_ci(correct: Sequence[bool], confidence: float = 0.95) -> dict:
    """n, k, accuracy and its Wilson interval.

    >>> {k: round(v, 4) for k, v in accuracy_ci([True, True, False, True]).items()}
    {'n': 4, 'k': 3, 'accuracy': 0.75, 'low': 0.3006, 'high': 0.9544}
    """
    c = np.asarray(correct, dtype=bool)
    low, high = wilson(int(c.sum()), len(c), confidence)
    return {"n": len(c), "k": int(c.sum()), "accuracy": float(c.mean()) if len(c) else float("nan"),
            "low": low, "high": high}


def _summary(name: str, n: int, observed: float, diffs: np.ndarray, confidence: float) -> dict:
    alpha = 1 - confidence
    le, ge = float(np.mean(diffs <= 0)), float(np.mean(diffs >= 0))
    return {"family": name, "n": n, "diff": float(observed),
            "low": float(np.quantile(diffs, alpha / 2)), "high": float(np.quantile(diffs, 1 - alpha / 2)),
            "p_value": min(1.0, 2 * min(le, ge)), "share_le_0": le}


def paired_bootstrap(correct_a: Sequence[bool], correct_b: Sequence[bool],
                     families: Sequence[str] | None = None, n_resamples: int = 10_000,
                     seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Paired bootstrap of accuracy(a) - accuracy(b): one row per family, then the mean over
    families (omitted when there is a single family). Columns: family, n, diff (observed), low,
    high (percentile interval), p_value (two-sided), share_le_0.

    >>> a = [1, 1, 1, 0, 1, 1, 0, 1]
    >>> b = [0, 1, 0, 0, 1, 0, 0, 1]
    >>> paired_bootstrap(a, b, ["x"] * 4 + ["y"] * 4, n_resamples=2000, seed=0).round(4)
                   family  n   diff  low  high  p_value  share_le_0
    0                   x  4  0.500  0.0  1.00    0.134      0.0670
    1                   y  4  0.250  0.0  0.75    0.651      0.3255
    2  mean over families  8  0.375  0.0  0.75    0.054      0.0270
    """
    a = np.asarray(correct_a, dtype=float)
    b = np.asarray(correct_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired correctness must be two equal-length vectors: {a.shape} vs {b.shape}")
    fam = np.asarray(families if families is not None else ["all"] * len(a), dtype=object)
    if len(fam) != len(a):
        raise ValueError(f"{len(fam)} families for {len(a)} problems")
    rng = np.random.default_rng(seed)
    d = a - b
    rows, per_family = [], []
    for name in sorted(set(fam)):
        df = d[fam == name]
        idx = rng.integers(0, len(df), size=(n_resamples, len(df)))
        diffs = df[idx].mean(axis=1)
        per_family.append((df.mean(), diffs))
        rows.append(_summary(str(name), len(df), df.mean(), diffs, confidence))
    if len(per_family) > 1:
        observed = float(np.mean([o for o, _ in per_family]))
        diffs = np.mean([x for _, x in per_family], axis=0)
        rows.append(_summary(MEAN, len(d), observed, diffs, confidence))
    return pd.DataFrame(rows)


def align(a: pd.DataFrame, b: pd.DataFrame, key: str = "problem_id",
          column: str = "correct") -> pd.DataFrame:
    """``key``, ``family``, ``a``, ``b``: two result tables' ``column`` on the same problems.

    >>> x = pd.DataFrame({"problem_id": ["p1", "p2"], "family": ["f", "f"], "correct": [True, False]})
    >>> y = pd.DataFrame({"problem_id": ["p2", "p1"], "family": ["f", "f"], "correct": [True, True]})
    >>> align(x, y)
      problem_id family      a     b
    0         p1      f   True  True
    1         p2      f  False  True
    """
    left, right = set(a[key]), set(b[key])
    if left != right:
        raise ValueError(f"the two results cover different problems: {len(left - right)} only in a, "
                         f"{len(right - left)} only in b")
    merged = a[[key, "family", column]].merge(b[[key, column]], on=key, suffixes=("_a", "_b"))
    return (merged.rename(columns={f"{column}_a": "a", f"{column}_b": "b"})
            .sort_values(key).reset_index(drop=True))


def macro_accuracy(correct: Sequence[bool], families: Sequence[str], n_resamples: int = 10_000,
                   seed: int = 0, confidence: float = 0.95) -> dict:
    """The mean over families of the accuracy, with its bootstrap interval (problems resampled
    within each family): the paired bootstrap against an all-wrong reference.

    >>> macro_accuracy([1, 1, 0, 1], ["x", "x", "y", "y"], n_resamples=2000, seed=0)["accuracy"]
    0.75
    """
    c = np.asarray(correct, dtype=bool)
    row = paired_bootstrap(c, np.zeros_like(c), families, n_resamples, seed, confidence).iloc[-1]
    return {"accuracy": float(row["diff"]), "low": float(row["low"]), "high": float(row["high"])}
