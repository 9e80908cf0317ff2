"""Rare-disease and causal-gene soft verifier: HPO semantic similarity (pyhpo ``HPOSet``).

The patient's phenotypes (HP ids in the prompt, else in the problem's evidence) are compared with
the HPO annotations of the claimed disease or gene. With candidates the reward is the claim's
similarity over the best candidate's, so the most phenotype-consistent candidate earns 1.0 and a
plausible near-miss still earns partial credit; without candidates it is the raw similarity.

The ontology takes 20-40 s to load, so it is loaded lazily, once per process, on first use.

>>> patient_terms("Patient: Seizure (HP:0001250); Ataxia (HP:0001251).", "{}")
['HP:0001250', 'HP:0001251']
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache

import pandas as pd

from tasks.common.answers import json_omim_id, normalise_label

_HP = re.compile(r"HP:\d{7}")
_DISEASE_ID = re.compile(r"\b(OMIM|ORPHA)\s*:\s*(\d+)\b", re.I)
EVIDENCE_KEYS = ("phenotypes", "hpo_ids", "patient_phenotypes")


@lru_cache(maxsize=1)
def ontology():
    """pyhpo's Ontology, loaded on first call in this process."""
    from pyhpo import Ontology

    Ontology()
    return Ontology


def patient_terms(prompt: str, evidence: str | None) -> list[str]:
    """HP ids the patient presents with: those in the prompt, else a phenotype list in evidence."""
    found = list(dict.fromkeys(_HP.findall(prompt)))
    if found or not evidence:
        return found
    record = json.loads(evidence) if isinstance(evidence, str) else evidence
    for key in EVIDENCE_KEYS:
        if isinstance(record, dict) and isinstance(record.get(key), list):
            return list(dict.fromkeys(t for t in record[key] if _HP.fullmatch(str(t))))
    return []


class PhenotypeScorer:
    def __init__(self, disease_phenotypes: pd.DataFrame, gene_phenotypes: pd.DataFrame,
                 method: str = "graphic", combine: str = "funSimAvg"):
        self.method, self.combine = method, combine
        self._diseases = disease_phenotypes.groupby("disease_id")["hpo_id"].apply(tuple).to_dict()
        names = disease_phenotypes.drop_duplicates("disease_id")
        self._disease_by_name = {normalise_label(n): d for d, n in zip(names["disease_id"], names["disease_name"])}
        self._genes = {g.upper(): tuple(t) for g, t in
                       gene_phenotypes.groupby("gene_symbol")["hpo_id"].apply(tuple).items()}

    def disease_id(self, claim: str) -> str | None:
        """OMIM/ORPHA id in the claim (or its JSON OMIM_ID), else the disease of that exact name."""
        omim = json_omim_id(claim)
        if omim:
            return f"OMIM:{omim}" if f"OMIM:{omim}" in self._diseases else None
        match = _DISEASE_ID.search(claim)
        if match:
            found = f"{match.group(1).upper()}:{match.group(2)}"
            return found if found in self._diseases else None
        return self._disease_by_name.get(normalise_label(claim))

    def annotations(self, claim: str, target: str) -> tuple[str, ...] | None:
        if target == "disease":
            disease = self.disease_id(claim)
            return self._diseases.get(disease) if disease else None
        if target == "gene":
            return self._genes.get(claim.strip().upper())
        raise ValueError(f"phenotype target {target!r}: expected disease or gene")

    @lru_cache(maxsize=65536)
    def similarity(self, patient: tuple[str, ...], annotated: tuple[str, ...]) -> float:
        from pyhpo import HPOSet

        ontology()
        known = [t for t in patient if _term_known(t)]
        other = [t for t in annotated if _term_known(t)]
        if not known or not other:
            return 0.0
        return float(HPOSet.from_queries(known).similarity(
            HPOSet.from_queries(other), kind="omim", method=self.method, combine=self.combine))

    def reward(self, patient: Sequence[str], claimed: str, choices: Sequence[str], target: str) -> float:
        """Similarity of the claim relative to the best candidate (raw similarity without choices)."""
        claim_terms = self.annotations(claimed, target)
        if claim_terms is None or not patient:
            return 0.0
        patient = tuple(sorted(patient))
        claim_sim = self.similarity(patient, claim_terms)
        rivals = [self.annotations(c, target) for c in choices]
        best = max([claim_sim] + [self.similarity(patient, t) for t in rivals if t is not None])
        if not choices:
            return claim_sim
        return claim_sim / best if best > 0 else 0.0


@lru_cache(maxsize=None)
def _term_known(term: str) -> bool:
    try:
        ontology().get_hpo_object(term)
    except (RuntimeError, ValueError, KeyError):  # obsolete or unknown id in this HPO release
        return False
    return True
