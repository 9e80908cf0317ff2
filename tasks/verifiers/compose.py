"""Reward functions for TRL's GRPOTrainer: one per verifier, routed by family, and their composition.

Every reward function has TRL's signature ``reward(prompts, completions, **columns)`` where the
columns are the dataset's other columns as lists (``family``, ``answer``, ``answer_type``,
``choices``, ``evidence``, ``source_ids``, ``id``) plus TRL's ``completion_ids``. It returns one
float per completion, or None where the verifier does not apply to that problem's family (TRL
then leaves that verifier out of that sample's sum, and out of its logged mean and std).

Two ways to hand them to GRPOTrainer (``trl_reward_setup`` gives the first):

- the per-verifier functions with ``reward_weights`` from params; ``normalise_per_group`` maps to
  TRL's ``multi_objective_aggregation="normalize_then_sum"`` (each verifier standardised within
  its group before the weighted sum); TRL logs ``rewards/<verifier>/mean`` and ``/std``;
- ``composed_reward``: the same weighted sum computed here (groups are the completions sharing a
  problem ``id``), for evaluate or any trainer that takes a single reward.

Correctness is the answer contract's verdict (``tasks.common.answers.judge``), the same function
annotate's reverse verification and evaluate's scorer call. With ``verifiers.answer_needs_format``
(the default) it, and every soft verifier, counts only for a well-formed reply (the format
verifier's rule): a reply that drops ``<think>`` earns no answer reward.

Routing: correctness, format, length and repetition apply to every family; each soft verifier
applies to the families in ``SOFT_FAMILIES``. A soft verifier gives 0.0 to a completion that
claims nothing it can read (no answer tag, or an answer outside its domain).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tasks.common.params import Verifiers
from tasks.common.answers import claimed_text, completion_text, extract_answer, judge, normalise_binary
from tasks.verifiers.cell_type import genes_of
from tasks.verifiers.fitted import VerifierBundle
from tasks.verifiers.formatting import format_ok
from tasks.verifiers.phenotype import patient_terms
from tasks.verifiers.protein_family import sequence_of
from tasks.verifiers.shaping import length_penalty, repetition_penalty
from tasks.verifiers.tf_binding import window_of

SOFT_FAMILIES = {
    "cell_type": {"cell_type"},
    "tf_binding": {"tf_binding"},
    "protein_family": {"protein_family"},
    "phenotype": {"rare_disease", "causal_gene"},
    "perturbation": {"perturb_de", "perturb_dir"},
}
Sample = dict[str, Any]
Score = Callable[[Sample, VerifierBundle, Verifiers], "float | None"]


def _choices(sample: Sample) -> list[str]:
    choices = sample.get("choices")
    return [] if choices is None else [str(c) for c in choices]


def _claim(sample: Sample, settings: Verifiers) -> str | None:
    text = extract_answer(sample["completion"], settings.answer_tag)
    return claimed_text(text, sample.get("answer_type") or "label", _choices(sample))


def correctness(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    if not sample.get("answer"):
        return None
    right = judge(sample["completion"], sample["answer"], sample["answer_type"], _choices(sample),
                  settings.answer_tag)
    return 1.0 if right else 0.0


def _well_formed(sample: Sample, settings: Verifiers) -> bool:
    """The format rule on this sample's prompt kind: the format verifier and the answer gate alike."""
    return format_ok(sample["completion"], settings.answer_tag, bool(sample.get("reasoning", True)))


def format_(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    return 1.0 if _well_formed(sample, settings) else 0.0


def length(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    ids = sample.get("completion_ids")
    n = len(ids) if ids is not None else len(completion_text(sample["completion"]).split())
    return length_penalty(n, settings.length_budget)


def repetition(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    return repetition_penalty(completion_text(sample["completion"]), settings.repetition_ngram)


def cell_type(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    genes = genes_of(sample["prompt"])
    if sample.get("answer_type") not in ("label", "multiple_choice") or not genes:
        return None  # e.g. the explanation variant, whose answer is a gene list
    claim = _claim(sample, settings)
    return 0.0 if claim is None else bundle.cell_type.probability(genes, claim)


def tf_binding(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    window = window_of(sample["prompt"])
    if window is None:
        return None
    claim = _claim(sample, settings)
    return 0.0 if claim is None else bundle.motifs.reward(window, claim, _choices(sample))


def protein_family(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    sequence = sequence_of(sample["prompt"])
    if sequence is None:
        return None
    claim = _claim(sample, settings)
    return 0.0 if claim is None else bundle.families.reward(sequence, claim, _choices(sample))


def phenotype(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    patient = patient_terms(sample["prompt"], sample.get("evidence"))
    if not patient:
        return None
    target = "disease" if sample["family"] == "rare_disease" else "gene"
    claim = _claim(sample, settings)
    return 0.0 if claim is None else bundle.phenotypes.reward(patient, claim, _choices(sample), target)


def perturbation_key(sample: Sample) -> tuple[str, str, str] | None:
    """(cell line, knockdown, downstream gene) from the evidence, else from source_ids."""
    evidence = sample.get("evidence")
    record = json.loads(evidence) if isinstance(evidence, str) and evidence else (evidence or {})
    if all(k in record for k in ("cell_line", "pert", "gene")):
        return str(record["cell_line"]), str(record["pert"]), str(record["gene"])
    ids = list(sample.get("source_ids") or [])
    return (str(ids[0]), str(ids[1]), str(ids[2])) if len(ids) == 3 else None


def perturbation(sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    key = perturbation_key(sample)
    if key is None:
        return None
    text = extract_answer(sample["completion"], settings.answer_tag)
    claim = normalise_binary(text) if text else None
    task = "de" if sample["family"] == "perturb_de" else "dir"
    return 0.0 if claim is None else bundle.perturbation.reward(key[0], task, key[1], key[2], claim)


SCORES: dict[str, Score] = {
    "correctness": correctness, "format": format_, "length": length, "repetition": repetition,
    "cell_type": cell_type, "tf_binding": tf_binding, "protein_family": protein_family,
    "phenotype": phenotype, "perturbation": perturbation,
}
NEEDS = {"cell_type": "cell_type", "perturbation": "perturbation"}  # verifier -> fitted bundle member


READS_ANSWER = {"correctness", *SOFT_FAMILIES}  # the verifiers that score the reply's answer


def score(name: str, sample: Sample, bundle: VerifierBundle, settings: Verifiers) -> float | None:
    """One verifier on one sample, None where its routing says it does not apply. With
    ``settings.answer_needs_format``, a verifier that scores the answer gives 0.0 to a reply that is
    not well formed (:func:`format_ok`), so a policy cannot trade the reasoning block for the answer.

    >>> from tasks.common.params import Verifiers
    >>> gated = Verifiers(weights={"correctness": 1.0})
    >>> bare = {"completion": "<answer>yes</answer>", "answer": "yes", "answer_type": "yes_no"}
    >>> score("correctness", bare, None, gated), score("correctness", bare, None, gated.model_copy(
    ...     update={"answer_needs_format": False}))
    (0.0, 1.0)
    >>> score("correctness", {**bare, "completion": "<think>x</think><answer>yes</answer>"}, None, gated)
    1.0
    """
    families = SOFT_FAMILIES.get(name)
    if families is not None and sample.get("family") not in families:
        return None
    value = SCORES[name](sample, bundle, settings)
    gated = settings.answer_needs_format and name in READS_ANSWER
    if value is not None and gated and not _well_formed(sample, settings):
        return 0.0
    return value


def samples(prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]) -> list[Sample]:
    """Rows of a TRL reward call: prompt text, completion, and the dataset columns."""
    n = len(completions)
    keep = {k: v for k, v in columns.items() if isinstance(v, (list, tuple)) and len(v) == n}
    return [{"prompt": _prompt_text(prompts[i]), "completion": completions[i],
             **{k: v[i] for k, v in keep.items()}} for i in range(n)]


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, str):
        return prompt
    return "\n".join(completion_text([m]) for m in prompt)  # chat messages


def reward_function(name: str, bundle: VerifierBundle, settings: Verifiers) -> Callable[..., list]:
    """A TRL reward function for one verifier; its ``__name__`` is the verifier's (TRL logs it)."""
    if name not in SCORES:
        raise ValueError(f"unknown verifier {name!r}; known: {sorted(SCORES)}")
    member = NEEDS.get(name)
    if member and getattr(bundle, member) is None:
        raise ValueError(f"verifier {name!r} has weight in params but no fitted model in the verifiers "
                         f"folder (no training rows of its family); give it weight 0 or add problems")

    def reward(prompts, completions, **columns):
        return [score(name, s, bundle, settings) for s in samples(prompts, completions, columns)]

    reward.__name__ = reward.__qualname__ = name
    return reward


def trl_reward_setup(bundle: VerifierBundle, settings: Verifiers) -> dict[str, Any]:
    """Keyword arguments for GRPOTrainer (``reward_funcs``) and GRPOConfig (the other two)."""
    names = [n for n, w in settings.weights.items() if w != 0]
    return {"reward_funcs": [reward_function(n, bundle, settings) for n in names],
            "reward_weights": [settings.weights[n] for n in names],
            "multi_objective_aggregation": ("normalize_then_sum" if settings.normalise_per_group
                                            else "sum_then_normalize")}


def combine(per_verifier: dict[str, Sequence[float | None]], weights: dict[str, float],
            groups: Sequence[Any] | None = None, eps: float = 1e-4) -> list[float]:
    """Weighted sum over verifiers (None adds nothing); with ``groups``, each verifier is first
    standardised within each group ((r - mean) / (std + eps) over the group's applicable values).

    >>> combine({"a": [1.0, 0.0], "b": [None, 0.5]}, {"a": 1.0, "b": 2.0})
    [1.0, 1.0]
    >>> [round(x, 3) for x in combine({"a": [1.0, 0.0, 3.0]}, {"a": 1.0}, groups=["p", "p", "q"])]
    [0.707, -0.707, 0.0]
    """
    total = None
    for name, values in per_verifier.items():
        r = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
        if groups is not None:
            r = _standardise(r, list(groups), eps)
        term = weights.get(name, 0.0) * np.nan_to_num(r, nan=0.0)
        total = term if total is None else total + term
    return [] if total is None else [round(float(x), 6) for x in total]


def _standardise(r: np.ndarray, groups: list, eps: float) -> np.ndarray:
    out = np.full_like(r, np.nan)
    for key in dict.fromkeys(groups):
        idx = np.array([g == key for g in groups])
        vals = r[idx]
        ok = ~np.isnan(vals)
        if not ok.any():
            continue
        mean, std = vals[ok].mean(), vals[ok].std(ddof=1) if ok.sum() > 1 else 0.0
        out[idx] = np.where(ok, (vals - mean) / (std + eps), np.nan)
    return out


def composed_reward(bundle: VerifierBundle, settings: Verifiers) -> Callable[..., list]:
    """One TRL reward function: the weighted (optionally group-normalised) sum of all verifiers."""
    funcs = {n: reward_function(n, bundle, settings) for n, w in settings.weights.items() if w != 0}

    def reward(prompts, completions, **columns):
        per = {n: f(prompts, completions, **columns) for n, f in funcs.items()}
        groups = None
        if settings.normalise_per_group:
            groups = columns.get("id") or [_prompt_text(p) for p in prompts]
        return combine(per, settings.weights, groups)

    reward.__name__ = reward.__qualname__ = "composed"
    return reward

