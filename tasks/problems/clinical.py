"""Families ``rare_disease`` and ``causal_gene``: a patient's phenotypes -> disease / causal gene.

A patient is sampled from an OMIM disease's HPO annotations: ``drop_fraction`` of them are
dropped (at most ``max_phenotypes`` kept) and ``unrelated`` terms are added that are neither
annotated to the disease nor ancestors/descendants of its terms. Diseases with fewer than
``min_phenotypes`` annotations are skipped and counted. Distractors are drawn from all eligible
OMIM diseases (all annotated genes), favouring names that echo the question's words as much as
the answer's name does; a candidate sharing as many of the patient's terms as the answer does is
ambiguous and never offered (counted). Rare-disease answers also score in Biomni-Eval1's form
(:func:`biomni_answer`, :func:`matches_biomni`).

>>> biomni_answer("Char syndrome (OMIM:169100)")
{'disease_name': 'Char syndrome', 'OMIM_ID': '169100'}
>>> matches_biomni('{"disease_name": "Char", "OMIM_ID": "169100"}', "Char syndrome (OMIM:169100)")
True
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from tasks.common.answers import is_correct
from tasks.problems.choices import PositionDealer, UsageBalancer, arrange, same_split, words
from tasks.problems.records import lettered, problem

_CHOICE = re.compile(r"^(?P<name>.*) \((?:OMIM):(?P<id>\d+)\)$")


def biomni_answer(choice: str) -> dict[str, str]:
    """``"Name (OMIM:123)"`` -> Biomni-Eval1's ``{"disease_name": ..., "OMIM_ID": ...}``."""
    match = _CHOICE.match(choice)
    if not match:
        raise ValueError(f"not a rare-disease choice: {choice!r}")
    return {"disease_name": match.group("name"), "OMIM_ID": match.group("id")}


def matches_biomni(prediction: str | dict, answer: str) -> bool:
    """Biomni-Eval1 scores a rare-disease answer on the OMIM id alone (the answer contract's json rule)."""
    text = prediction if isinstance(prediction, str) else json.dumps(prediction)
    return is_correct(text, json.dumps(biomni_answer(answer)), "json")


class Ontology:
    """Term names and ancestor closure from the corpus table ``hpo_terms``."""

    def __init__(self, terms: pd.DataFrame):
        self.name = dict(zip(terms["id"], terms["name"]))
        self._parents = dict(zip(terms["id"], (list(p) for p in terms["parents"])))
        self._ancestors: dict[str, frozenset[str]] = {}

    def ancestors(self, term: str) -> frozenset[str]:
        if term not in self._ancestors:
            out: set[str] = set()
            stack = list(self._parents.get(term, []))
            while stack:
                t = stack.pop()
                if t not in out:
                    out.add(t)
                    stack.extend(self._parents.get(t, []))
            self._ancestors[term] = frozenset(out)
        return self._ancestors[term]

    def related(self, a: str, b: str) -> bool:
        return a == b or a in self.ancestors(b) or b in self.ancestors(a)

    def label(self, term: str) -> str:
        return f"{self.name.get(term, term)} ({term})"


def sample_patient(terms: list[str], drop_fraction: float, max_keep: int, n_unrelated: int,
                   noise_pool: list[str], ontology: Ontology,
                   rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(kept disease terms, unrelated terms); the caller shuffles them together."""
    n_keep = min(max_keep, max(1, math.ceil((1 - drop_fraction) * len(terms))))
    kept = [terms[i] for i in sorted(rng.choice(len(terms), size=n_keep, replace=False))]
    unrelated: list[str] = []
    while len(unrelated) < n_unrelated:
        t = noise_pool[int(rng.integers(len(noise_pool)))]
        if t not in unrelated and not any(ontology.related(t, d) for d in terms):
            unrelated.append(t)
    return kept, unrelated


def _pick_candidates(answer: str, patient: set[str], pool: dict[str, frozenset[str]], k: int,
                     name_words: dict[str, set[str]], question_words: set[str],
                     balancer: UsageBalancer, rng: np.random.Generator) -> tuple[list[str], int] | None:
    """Distractors sharing fewer patient terms than the answer (else the draw is ambiguous).

    Draw weights favour candidates whose names overlap the patient's phenotype words as much as
    the answer's name does (disease names often echo their phenotypes: "Hair defect with
    photosensitivity ...") and candidates drawn less often so far (:class:`UsageBalancer`), so
    neither is a surface cue.
    """
    def overlap(c: str) -> float:
        return len(name_words[c] & question_words) / max(len(name_words[c]), 1)

    target = len(patient & pool[answer])
    others = [c for c in pool if c != answer]
    eligible = [c for c in others if len(patient & pool[c]) < target]
    if len(eligible) < k:
        return None
    similarity = np.exp(-np.abs(np.array([overlap(c) for c in eligible]) - overlap(answer)) / 0.05)
    w = similarity * balancer.weights(eligible)
    picked = [eligible[i] for i in rng.choice(len(eligible), size=k, replace=False, p=w / w.sum())]
    balancer.record(picked)
    return picked, len(others) - len(eligible)


def _patient_prompt(terms: list[str], ontology: Ontology, question: str, options: list[str]) -> str:
    listed = "\n".join(f"- {ontology.label(t)}" for t in terms)
    return (f"A patient presents with the following phenotypes (HPO terms):\n{listed}\n"
            f"{question}\n{lettered(options)}")


def _clinical_rows(family: str, cases: list[dict], pool: dict[str, frozenset[str]],
                   display: Callable[[str], str], question: str, namespace: str,
                   split_of: dict[str, str], ontology: Ontology, p, n_choices: int,
                   rng: np.random.Generator, stats: dict) -> list[dict]:
    deal, balancer = PositionDealer(n_choices, rng), UsageBalancer()
    noise_pool = sorted({t for s in pool.values() for t in s})
    name_words = {c: words(display(c)) for c in pool}
    # candidates from the case's own split only (choices.same_split)
    split_pools = {s: {c: pool[c] for c in same_split(pool, lambda c: split_of[f"{namespace}:{c}"], s)}
                   for s in ("train", "test")}
    rows = []
    for case in cases:
        entity = f"{namespace}:{case['key']}"
        kept, unrelated = sample_patient(case["terms"], p.drop_fraction, p.max_phenotypes,
                                         p.unrelated_phenotypes, noise_pool, ontology, rng)
        shown = [t for t in (kept + unrelated)]
        shown = [shown[i] for i in rng.permutation(len(shown))]
        patient = set(shown)
        patient_words = words(_patient_prompt(shown, ontology, question, []))
        picked = _pick_candidates(case["key"], patient, split_pools[split_of[entity]], n_choices - 1, name_words,
                                  patient_words, balancer, rng)
        if picked is None:
            stats["no_unambiguous_candidates"] += 1
            continue
        distractors, ambiguous = picked
        stats["ambiguous_candidates_excluded"] += ambiguous
        options = arrange(display(case["key"]), [display(d) for d in distractors], deal())
        evidence = {**case["evidence"],
                    "shared_with_annotations": [{"hpo_id": t, "name": ontology.name.get(t, t)}
                                                for t in kept],
                    "unrelated": [{"hpo_id": t, "name": ontology.name.get(t, t)} for t in unrelated],
                    "n_annotated": len(case["terms"]), "n_dropped": len(case["terms"]) - len(kept),
                    "candidate_overlap": {display(c): len(patient & pool[c])
                                          for c in [case["key"], *distractors]}}
        rows.append(problem(
            family=family, category="clinical", task_kind="annotation", modality="phenotype",
            prompt=_patient_prompt(shown, ontology, question, options), answer=display(case["key"]),
            answer_type="multiple_choice", split=split_of[entity], entity=entity,
            source_ids=case["source_ids"], evidence=evidence, choices=options, key="patient"))
    return rows


def eligible_diseases(disease_phenotypes: pd.DataFrame, min_phenotypes: int) -> tuple[dict, int]:
    """OMIM diseases with at least ``min_phenotypes`` annotations, and how many had fewer."""
    omim = disease_phenotypes[disease_phenotypes["source"] == "OMIM"]
    terms = omim.groupby("disease_id")["hpo_id"].agg(lambda s: sorted(set(s)))
    ok = terms[terms.map(len) >= min_phenotypes]
    return ok.to_dict(), int(len(terms) - len(ok))


def rare_disease_problems(disease_phenotypes: pd.DataFrame, ontology: Ontology,
                          split_of: dict[str, str], p, n_choices: int,
                          rng: np.random.Generator) -> tuple[list[dict], dict]:
    terms, too_few = eligible_diseases(disease_phenotypes, p.min_phenotypes)
    names = disease_phenotypes.drop_duplicates("disease_id").set_index("disease_id")["disease_name"]
    ids = sorted(terms)
    chosen = [ids[i] for i in sorted(rng.permutation(len(ids))[:p.diseases])]
    pool = {d: frozenset(terms[d]) for d in ids}  # distractors: any eligible OMIM disease

    def display(d: str) -> str:
        return f"{names[d]} ({d})"

    cases = [{"key": d, "terms": terms[d], "source_ids": [d],
              "evidence": {"disease_id": d, "disease_name": names[d],
                           "biomni_answer": biomni_answer(display(d))}} for d in chosen]
    stats = {"diseases_below_min_phenotypes": too_few, "no_unambiguous_candidates": 0,
             "ambiguous_candidates_excluded": 0}
    rows = _clinical_rows("rare_disease", cases, pool, display,
                          "Which disease is the most likely diagnosis?", "disease", split_of,
                          ontology, p, n_choices, rng, stats)
    return rows, stats


def causal_gene_problems(disease_phenotypes: pd.DataFrame, disease_genes: pd.DataFrame,
                         gene_phenotypes: pd.DataFrame, ontology: Ontology, split_of: dict[str, str],
                         p, n_choices: int, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """One patient per causal gene, from an OMIM disease that has that single gene."""
    terms, too_few = eligible_diseases(disease_phenotypes, p.min_phenotypes)
    names = disease_phenotypes.drop_duplicates("disease_id").set_index("disease_id")["disease_name"]
    single = disease_genes[disease_genes["disease_id"].isin(terms.keys())]
    single = single.groupby("disease_id")["gene_symbol"].agg(list)
    single = single[single.map(len) == 1].map(lambda g: g[0])
    gene_terms = gene_phenotypes.groupby("gene_symbol")["hpo_id"].agg(frozenset)
    single = single[single.isin(gene_terms.index)]
    by_gene = single.groupby(single).apply(lambda s: sorted(s.index))
    genes = sorted(by_gene.index)
    chosen = [genes[i] for i in sorted(rng.permutation(len(genes))[:p.genes])]
    pool = gene_terms.to_dict()  # distractors: any gene with phenotype annotations
    cases = []
    for g in chosen:
        d = by_gene[g][int(rng.integers(len(by_gene[g])))]
        cases.append({"key": g, "terms": terms[d], "source_ids": [g, d],
                      "evidence": {"gene": g, "disease_id": d, "disease_name": names[d],
                                   "n_gene_annotations": len(gene_terms[g])}})
    stats = {"diseases_below_min_phenotypes": too_few, "no_unambiguous_candidates": 0,
             "ambiguous_candidates_excluded": 0}
    rows = _clinical_rows("causal_gene", cases, pool, str,
                          "Which gene most likely carries the causal variant?", "gene", split_of,
                          ontology, p, n_choices, rng, stats)
    return rows, stats
