"""Protein-family soft verifier: HMMER bit scores (pyhmmer) of the claimed family and its rivals.

Each family's profile HMM is compared with the sequence with HMMER's acceleration filters off
(every family gets scored, not only the ones that pass the MSV/Viterbi/Forward heuristics). A
family for which HMMER defines no domain at all gets ``NO_HIT_BITS``. The reward is the posterior
of the claimed family among the choices from the bit scores (see :mod:`tasks.verifiers.posterior`).

>>> sequence_of("Which family? <protein>MKV LLA</protein>")
'MKVLLA'
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from tasks.verifiers.posterior import claim_posterior

_PROTEIN = re.compile(r"<protein>\s*([A-Za-z\s]+?)\s*</protein>", re.S)
# Below the sequence scores HMMER reports for unrelated families here (about -5 to +3 bits), so a
# family without any alignable domain ranks last without making the posterior undefined.
NO_HIT_BITS = -10.0


def sequence_of(text: str) -> str | None:
    match = _PROTEIN.search(text)
    return re.sub(r"\s+", "", match.group(1)).upper() if match else None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


class FamilyScorer:
    def __init__(self, hmm_files: Sequence[Path], temperature: float = 1.0):
        from pyhmmer import easel, plan7

        self.temperature = temperature
        self.alphabet = easel.Alphabet.amino()
        self._hmms: dict[str, object] = {}
        self._names: dict[str, str] = {}
        for path in hmm_files:
            with plan7.HMMFile(path) as fh:
                for hmm in fh:
                    if not hmm.alphabet.is_amino():
                        continue
                    name = _text(hmm.name)
                    self._hmms[name] = hmm
                    for key in (name, _text(hmm.accession), _text(hmm.accession).split(".")[0]):
                        if key:
                            self._names[key.upper()] = name
        if not self._hmms:
            raise ValueError(f"no protein profile HMMs in {list(map(str, hmm_files))}")
        self._pipeline = plan7.Pipeline(self.alphabet, bias_filter=False, F1=1.0, F2=1.0, F3=1.0,
                                        E=1e12, domE=1e12)

    def family(self, claim: str) -> str | None:
        """The HMM a claim names, by family name or Pfam accession (with or without version)."""
        return self._names.get(claim.strip().upper())

    @lru_cache(maxsize=65536)
    def bits(self, family: str, sequence: str) -> float:
        from pyhmmer import easel

        seq = easel.TextSequence(name=b"query", sequence=sequence).digitize(self.alphabet)
        hits = self._pipeline.search_hmm(self._hmms[family], easel.DigitalSequenceBlock(self.alphabet, [seq]))
        self._pipeline.clear()
        return max((hit.score for hit in hits), default=NO_HIT_BITS)

    def reward(self, sequence: str, claimed: str, choices: Sequence[str]) -> float:
        """Posterior of the claimed family among the choices (and the claim itself)."""
        claim = self.family(claimed)
        if claim is None:
            return 0.0
        families = {self.family(c) for c in choices} - {None} | {claim}
        return claim_posterior({f: self.bits(f, sequence) for f in families}, claim, self.temperature)
