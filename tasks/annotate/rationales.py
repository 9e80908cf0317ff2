"""The offline knowledge-grounded teacher and the deterministic checker that verifies its steps.

The teacher turns a problem's facts (``tasks.annotate.evidence``) into steps: an opening that says
how the data will be read (never naming the answer), one step per candidate citing its facts in
fixed sentence forms, a comparison, and a conclusion. It argues for the candidate the facts
support, which is not always the label.

The checker is a solver that sees only the question and the steps. It finds the fact sentences in
the steps (the :data:`FORMS` below), recomputes each candidate's score from the cited numbers
(ranks, PWM scores and thresholds, bit scores, information content, neighbour similarity) and
answers with the best candidate, or yes/no against the family's threshold. It ignores the
comparison sentences, so a trace whose arithmetic contradicts its own citations is caught.

>>> steps = ["Reading the list.", "Marker CD79A of B cell is at rank 2 in the cell sentence.",
...          "Marker CD3E of T cell is at rank 40 in the cell sentence."]
>>> derive_answer("cell_type", steps, "multiple_choice", ["T cell", "B cell"])
'B cell'
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks.annotate import evidence as ef
from tasks.annotate.teachers import Call, OnReply, Reply
from tasks.common.answers import LETTERS, tagged

_NUMBER = r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?"
_SIGN = {"differentially expressed": 1, "not differentially expressed": -1,
         "up-regulated": 1, "down-regulated": -1}
_NAME = r"[^,;()\[\]]+?"  # gene names may hold spaces (PerturbQA's gene sets): lazy, up to the next literal
_FIELD = {"gene": _NAME, "neighbour": _NAME, "pert": _NAME, "motif": r"[^\s,;()]+", "frame": r"[+-]\d",
          "outcome": "|".join(sorted(map(re.escape, _SIGN), key=len, reverse=True))}
_NUMERIC = {"rank", "score", "position", "threshold", "bits", "evalue", "ic", "identity", "rate", "n"}


@dataclass(frozen=True)
class Form:
    template: str
    weight: Callable[[dict], float]

    @property
    def pattern(self) -> re.Pattern:
        parts = re.split(r"(\{\w+\})", self.template)
        regex, seen = "", set()
        for part in parts:
            name = part[1:-1] if part.startswith("{") else None
            if name is None:
                regex += re.escape(part)
            elif name in seen:  # a field cited twice must say the same thing both times
                regex += rf"(?P={name})"
            elif name in _NUMERIC:
                regex += rf"(?P<{name}>{_NUMBER})"
            else:
                regex += rf"(?P<{name}>{_FIELD.get(name, r'.+?')})"
            if name:
                seen.add(name)
        return re.compile(regex)


FORMS = {
    "marker": Form("Marker {gene} of {candidate} is at rank {rank} in the cell sentence.",
                   lambda f: 1 / math.log2(float(f["rank"]) + 1)),
    "no_marker": Form("No known marker of {candidate} is among the listed genes.", lambda f: 0.0),
    # a short gene-set trace: the question names the type, so each step is a marker and its rank
    "listed_marker": Form("Marker {gene} is at rank {rank}.", lambda f: 1 / math.log2(float(f["rank"]) + 1)),
    "motif": Form("The best match to the {candidate} motif ({motif}) scores {score} at position "
                  "{position}, against a threshold of {threshold}.",
                  lambda f: float(f["score"]) - float(f["threshold"])),
    "hmm": Form("Profile HMM {candidate} scores the sequence at {bits} bits (E-value {evalue}).",
                lambda f: float(f["bits"])),
    "no_hmm": Form("Profile HMM {candidate} finds no match in the sequence.", lambda f: 0.0),
    "disease_phenotype": Form("The patient's {phenotype} (information content {ic}) is an annotated "
                              "feature of [{candidate}].", lambda f: float(f["ic"])),
    "no_disease_phenotype": Form("None of the patient's phenotypes is an annotated feature of "
                                 "[{candidate}].", lambda f: 0.0),
    "gene_phenotype": Form("Gene {candidate} is linked to the patient's {phenotype} (information "
                           "content {ic}).", lambda f: float(f["ic"])),
    "no_gene_phenotype": Form("Gene {candidate} is linked to none of the patient's phenotypes.",
                              lambda f: 0.0),
    "neighbour": Form("Knockdown of {pert} changes {neighbour}, and knocking down {neighbour} left "
                      "{gene} {outcome} in the training data.", lambda f: _SIGN.get(f["outcome"], 0)),
    # |weight| < 1: the gene's base rate only breaks a tie between the neighbours' votes
    "gene_rate": Form("Across {n} training knockdowns, {gene} was {outcome} in {rate}% of them.",
                      lambda f: 0.99 * (float(f["rate"]) - 50) / 100 * _SIGN.get(f["outcome"], 0)),
    "expressed": Form("Gene {candidate} is expressed at rank {rank} in the cell sentence.",
                      lambda f: 1 / math.log2(float(f["rank"]) + 1)),
    "not_expressed": Form("Gene {candidate} does not appear in the cell sentence.", lambda f: -1.0),
    "translation": Form("Reading frame {frame} translates to a peptide with {identity}% identity "
                        "to {candidate}.", lambda f: float(f["identity"])),
}


@dataclass(frozen=True)
class Family:
    facts: Callable[[dict, dict, ef.Knowledge], tuple[list[dict], dict]]
    combine: str  # how a candidate's fact weights combine: "sum", "max" or "min" (all must hold)
    yes_at: float  # yes/no problems: yes when the combined weight reaches this
    opening: str
    weighting: str
    binary: tuple[str, str] = ("yes", "no")  # answers of a two-way decision (yes_no or e.g. up/down)


# family -> how its rationale is written and checked (the families themselves: tasks.common.schemas.FAMILIES)
FAMILY_RATIONALES = {
    "cell_type": Family(
        ef.cell_facts, "sum", math.inf,
        "The cell sentence ranks {n} genes by expression, highest first; known markers of a cell "
        "type near the top of the list point to the cell's identity.",
        "Weighting each marker by 1/log2(rank + 1)"),
    "tf_binding": Family(
        ef.motif_facts, "max", 0.0,
        "The {n}-bp sequence is scanned on both strands with each candidate motif's log-odds "
        "matrix; a site counts when its score reaches 80% of the motif's score range.",
        "Taking each motif's best score above its threshold"),
    "protein_family": Family(
        ef.hmm_facts, "max", 20.0,
        "The {n}-residue protein is searched with the profile HMM of each candidate family "
        "(HMMER); a domain hit with a high bit score identifies the family.",
        "Taking each family's best bit score"),
    "rare_disease": Family(
        ef.disease_facts, "sum", math.inf,
        "The patient presents {n} phenotypes; each candidate disease is weighed by the "
        "information content of the phenotypes it shares with the patient.",
        "Summing the information content of shared phenotypes"),
    "causal_gene": Family(
        ef.gene_facts, "sum", math.inf,
        "The patient presents {n} phenotypes; each candidate gene is weighed by the information "
        "content of the phenotypes it is linked to.",
        "Summing the information content of linked phenotypes"),
    "perturb_de": Family(
        ef.perturb_facts, "sum", 1e-9,
        "A knockdown acts through the genes it changes: when those genes were themselves knocked "
        "down in the training data, what happened to {gene} there is informative for {pert}.",
        "Counting each neighbour's vote for a change as +1 and against as -1"),
    "dna_to_protein": Family(
        ef.translation_facts, "max", math.inf,
        "The {n}-bp DNA is translated in all six reading frames with codon table {table} and each "
        "peptide is compared "
        "with the candidate proteins position by position.",
        "Taking each candidate's best identity over the frames"),
}
FAMILY_RATIONALES["cell_dna_tf_expression"] = Family(
    ef.tf_expression_facts, "min", 0.0,
    "Two things must hold: the {n}-bp DNA must carry a site of the factor (its motif's best score "
    "reaching 80% of the score range), and the factor's gene must be among the {genes} genes of "
    "the cell sentence.",
    "Requiring both the site and the expression")
FAMILY_RATIONALES["perturb_dir"] = Family(
    *[getattr(FAMILY_RATIONALES["perturb_de"], f) for f in ("facts", "combine", "yes_at", "opening", "weighting")],
    binary=("up", "down"))


def parse_facts(steps: Sequence[str]) -> list[tuple[str, dict]]:
    """Every fact sentence of every step, as (form name, fields)."""
    found = []
    for step in steps:
        for name, form in FORMS.items():
            found += [(name, m.groupdict()) for m in form.pattern.finditer(step)]
    return found


def candidate_scores(facts: list[tuple[str, dict]], combine: str) -> dict[str, float]:
    scores: dict[str, float] = {}
    for name, fields in facts:
        key = fields.get("candidate", "")
        w = FORMS[name].weight(fields)
        if key not in scores:
            scores[key] = w
        else:
            scores[key] = {"sum": scores[key] + w, "max": max(scores[key], w),
                           "min": min(scores[key], w)}[combine]
    return scores


def _total(scores: dict[str, float], combine: str) -> float:
    return {"sum": sum, "max": max, "min": min}[combine](scores.values())


def _as_answer(candidate: str, answer_type: str, choices: list[str]) -> str:
    option = re.fullmatch(rf"option ([{LETTERS}])", candidate)
    if option and choices:
        return choices[LETTERS.index(option.group(1))]
    if answer_type == "json":  # Biomni-Eval1's rare-disease answer from a "Name (OMIM:123)" candidate
        found = re.fullmatch(r"(.*) \(OMIM:(\d+)\)", candidate)
        return json.dumps({"disease_name": found.group(1), "OMIM_ID": found.group(2)} if found
                          else {"disease_name": candidate})
    return candidate


def derive_answer(family: str, steps: Sequence[str], answer_type: str, choices: list[str]) -> str | None:
    """The answer the cited facts support, or None when the steps cite no fact this checker reads."""
    if family not in FAMILY_RATIONALES:
        return None
    facts = parse_facts(steps)
    if not facts:
        return None
    spec = FAMILY_RATIONALES[family]
    if answer_type == "gene_set":  # the cited genes themselves, in the order of their ranks
        cited = {f["gene"]: float(f.get("rank", 0)) for _, f in facts if f.get("gene")}
        return ", ".join(sorted(cited, key=cited.get))
    scores = candidate_scores(facts, spec.combine)
    if answer_type == "yes_no" or spec.binary != ("yes", "no"):
        total = _total(scores, spec.combine)
        return spec.binary[0] if total >= spec.yes_at else spec.binary[1]
    best = max(scores, key=scores.get)  # first-cited wins ties
    return _as_answer(best, answer_type, choices)


TRACE_STYLES = ("short", "full")
SHORT_FACTS = 1  # facts cited per candidate in a short trace: its strongest one


def _weight(fact: dict) -> float:
    return FORMS[fact["form"]].weight({k: str(v) for k, v in fact.items()})


def write_rationale(problem: dict, kb: ef.Knowledge, attempt: int = 0, style: str = "full") -> dict:
    """Steps and conclusion for one problem from what the knowledge supports (may not be the label).

    ``full``: an opening that says how the data are read, then every fact of the four strongest
    candidates, strongest first, and the comparison of the scores. ``short`` (a few dozen tokens a
    small model can learn to write): no opening, the other candidates in a seeded random order (the
    problem's id and the attempt), then the strongest last, so the trace weighs the others before it
    names the winner and the answer is the candidate of its last step; each with its
    :data:`SHORT_FACTS` strongest facts, and no score arithmetic; a problem
    about one subject (yes/no, a gene set) keeps all its facts and the total against the threshold,
    and a gene set's markers are cited without the type the question names (``listed_marker``:
    the type's name ten times over made the sft model loop to the token limit).
    """
    if style not in TRACE_STYLES:
        raise ValueError(f"trace style {style!r}: expected one of {TRACE_STYLES}")
    family = FAMILY_RATIONALES.get(problem["family"])
    if family is None:
        return {"steps": [], "conclusion": "", "note": f"no knowledge for family {problem['family']}"}
    evidence = json.loads(problem["evidence"] or "{}")
    facts, info = family.facts(problem, evidence, kb)
    if not facts:
        return {"steps": [family.opening.format(**info)], "conclusion": "The data give no usable evidence."}
    by_cand: dict[str, list[dict]] = {}
    for fact in facts:
        by_cand.setdefault(fact.get("candidate", ""), []).append(fact)
    scored = candidate_scores([(f["form"], {k: str(v) for k, v in f.items()}) for f in facts], family.combine)
    order = sorted(by_cand, key=lambda c: -scored[c])
    shuffle = random.Random(f"{problem['id']}:{attempt}").shuffle  # a re-ask: another candidate order
    if style == "short" and len(order) > 1:  # the answer follows from the last step, not the first
        others = order[1:]
        shuffle(others)
        order = others[:3] + order[:1]
    elif attempt:
        shuffle(order)
    order = order[:4] if len(order) > 4 else order
    if style == "short" and len(order) > 1:  # one subject (yes/no, a gene set) keeps every fact
        by_cand = {c: sorted(fs, key=_weight, reverse=True)[:SHORT_FACTS] for c, fs in by_cand.items()}
        scored = candidate_scores([(f["form"], {k: str(v) for k, v in f.items()})
                                   for c in order for f in by_cand[c]], family.combine)
    steps = [] if style == "short" else [family.opening.format(**info)]
    if len(order) == 1:  # one subject (a yes/no call, the named type's markers): a fact per step
        listed = style == "short" and problem["answer_type"] == "gene_set"
        for fact in by_cand[order[0]]:
            form = "listed_marker" if listed and fact["form"] == "marker" else fact["form"]
            steps.append(FORMS[form].template.format(**fact))
    else:  # several candidates: a step per candidate with all its facts
        steps += [" ".join(FORMS[f["form"]].template.format(**f) for f in by_cand[c]) for c in order]
    answer = derive_answer(problem["family"], steps, problem["answer_type"], list(problem["choices"]))
    ranked = sorted(scored.items(), key=lambda kv: -kv[1])
    if problem["answer_type"] == "gene_set":
        pass  # the cited markers are the answer; no comparison to make
    elif problem["answer_type"] == "yes_no" or family.binary != ("yes", "no"):
        total = _total(scored, family.combine)
        steps.append(f"{family.weighting}, the evidence totals {total:.2f} against a threshold of "
                     f"{family.yes_at:.2f}.")
    elif len(ranked) > 1 and style == "full":  # short: the cited facts are the comparison
        (c1, s1), (c2, s2) = ranked[0], ranked[1]
        steps.append(f"{family.weighting}, {c1} scores {s1:.2f}, ahead of {c2} ({s2:.2f}).")
    return {"steps": steps, "conclusion": f"Therefore the answer is {answer}."}


def _code_version() -> str:
    """Hash of this module and the facts module: the offline backends' replies are cached, so a
    change to how they reason must change their cache keys (their ``model`` name)."""
    blob = b"".join(Path(m.__file__).read_bytes() for m in (sys.modules[__name__], ef))
    return hashlib.sha256(blob).hexdigest()[:10]


class OfflineTeacher:
    """A backend that writes knowledge-grounded rationales; ``on_call`` sees each call (tests)."""

    endpoint = "offline"

    def __init__(self, kb: ef.Knowledge, on_call: Callable[[Call], None] | None = None,
                 style: str = "full"):
        self.kb, self.on_call, self.style = kb, on_call, style
        self.model = f"knowledge-grounded-{style}-{_code_version()}"

    def run(self, calls: Sequence[Call], on_reply: OnReply) -> None:
        for call in calls:
            if self.on_call:
                self.on_call(call)
            try:
                trace = write_rationale(call.context, self.kb, call.sampling.get("attempt", 0), self.style)
                on_reply(call, Reply(json.dumps(trace)))
            except ValueError as err:  # the problem's data cannot be read by this family's facts
                on_reply(call, Reply(json.dumps({"steps": [], "conclusion": "", "note": str(err)})))


class EvidenceChecker:
    """The deterministic solver: the answer re-derived from the facts the steps cite."""

    endpoint = "checker"

    def __init__(self, tag: str):
        self.tag = tag
        self.model = f"evidence-checker-{_code_version()}"

    def run(self, calls: Sequence[Call], on_reply: OnReply) -> None:
        for call in calls:
            c = call.context
            answer = derive_answer(c["family"], c["steps"], c["answer_type"], list(c["choices"]))
            text = "" if answer is None else tagged(answer, self.tag)
            on_reply(call, Reply(text))
