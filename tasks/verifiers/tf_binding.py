"""TF-binding soft verifier: PSSM scores of the claimed motif and its rivals on the DNA window.

Each JASPAR frequency matrix becomes a Biopython PSSM (log2 odds against a uniform background, or
against the window's own GC content so GC-rich windows do not favour GC-rich motifs). A motif's
score on a window is its best site on either strand. The reward is the posterior of the claimed
motif among the problem's choices (see :mod:`tasks.verifiers.posterior`).

>>> window_of("Which TF binds <dna>ACGTGCA</dna>?")
'ACGTGCA'
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import pandas as pd

from tasks.verifiers.posterior import claim_posterior

_DNA = re.compile(r"<dna>\s*([ACGTNacgtn\s]+?)\s*</dna>", re.S)
_MOTIF_ID = re.compile(r"\bMA\d{4}\.\d+\b")
PSEUDOCOUNT = 0.01  # per base, added to frequencies (a matrix of ~100 sites gets about one count)


def window_of(text: str) -> str | None:
    match = _DNA.search(text)
    return re.sub(r"\s+", "", match.group(1)).upper() if match else None


def _background(window: str, kind: str) -> dict[str, float]:
    if kind == "uniform":
        return dict.fromkeys("ACGT", 0.25)
    if kind != "gc":
        raise ValueError(f"motif background {kind!r}: expected uniform or gc")
    bases = [b for b in window if b in "ACGT"]
    gc = (sum(b in "GC" for b in bases) + 1) / (len(bases) + 2)  # +1/+2 keeps both sides non-zero
    return {"A": (1 - gc) / 2, "T": (1 - gc) / 2, "C": gc / 2, "G": gc / 2}


class MotifScorer:
    def __init__(self, motifs: pd.DataFrame, background: str = "uniform", temperature: float = 1.0):
        self.background, self.temperature = background, temperature
        self._pfm = {row.motif_id: np.asarray([list(p) for p in row.pfm], dtype=float)
                     for row in motifs.itertuples()}
        self._by_name: dict[str, list[str]] = {}
        for row in motifs.itertuples():
            self._by_name.setdefault(row.tf_name.upper(), []).append(row.motif_id)

    def motif_ids(self, claim: str) -> list[str]:
        """Motifs a claim names: a JASPAR id in it, or the TF name (all its matrices)."""
        ids = [m for m in _MOTIF_ID.findall(claim) if m in self._pfm]
        if ids:
            return ids
        return self._by_name.get(claim.strip().upper(), [])

    @lru_cache(maxsize=4096)
    def _pssm(self, motif_id: str, background: tuple):
        from Bio import motifs

        freqs = self._pfm[motif_id] + PSEUDOCOUNT
        freqs = freqs / freqs.sum(axis=1, keepdims=True)
        motif = motifs.Motif(alphabet="ACGT", counts={b: list(freqs[:, i]) for i, b in enumerate("ACGT")})
        pssm = motif.counts.normalize().log_odds(dict(background))
        return pssm, pssm.reverse_complement()

    def best_site(self, motif_id: str, window: str) -> float:
        """Best log2-odds score of the motif on either strand; -inf if the window is too short."""
        from Bio.Seq import Seq

        pssm, reverse = self._pssm(motif_id, tuple(sorted(_background(window, self.background).items())))
        if len(window) < pssm.length:
            return float("-inf")
        seq = Seq(window)
        with np.errstate(invalid="ignore"):
            scores = np.concatenate([np.atleast_1d(pssm.calculate(seq)),
                                     np.atleast_1d(reverse.calculate(seq))])
        scores = scores[np.isfinite(scores)]
        return float(scores.max()) if scores.size else float("-inf")

    def reward(self, window: str, claimed: str, choices: Sequence[str]) -> float:
        """Posterior of the claimed motif among the choices (and the claim itself).

        Candidates naming the same matrices (a TF name and its JASPAR id) count once.
        """
        claim_key = tuple(self.motif_ids(claimed))
        if not claim_key:
            return 0.0
        keys = {tuple(self.motif_ids(c)) for c in choices} - {()}
        scores = {key: max(self.best_site(m, window) for m in key) for key in keys | {claim_key}}
        return claim_posterior(scores, claim_key, self.temperature)
