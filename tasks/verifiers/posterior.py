"""Turning log2-odds scores of competing claims into the probability of one claim.

PSSM scores (Biopython) and HMMER bit scores are both log2 likelihood ratios against a background,
so with equal priors over the candidates the posterior of candidate i is 2^s_i / sum_j 2^s_j.
``temperature`` > 1 flattens it (partial credit for near-ties such as paralogous motifs).

>>> round(claim_posterior({"GATA1": 12.0, "SOX2": 2.0, "REST": 11.0}, "REST"), 3)
0.333
>>> claim_posterior({"a": 1.0}, "b")
0.0
"""
from __future__ import annotations

import math


def claim_posterior(scores: dict, claimed, temperature: float = 1.0) -> float:
    """Posterior of ``claimed`` among ``scores`` (log2 odds); 0.0 when it has no score."""
    if claimed not in scores or not math.isfinite(scores[claimed]):
        return 0.0
    finite = {k: v for k, v in scores.items() if math.isfinite(v)}
    top = max(finite.values())
    weights = {k: 2.0 ** ((v - top) / temperature) for k, v in finite.items()}
    return weights[claimed] / sum(weights.values())
