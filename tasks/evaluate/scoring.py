"""Scoring checkpoints on the test split: prompts as SFT saw them, answers read by the verifiers.

* :func:`select_test`: each family's test problems, capped by a seeded sample; PerturbQA families
  keep whole (cell line, gene) groups, because their metric is an AUROC per downstream gene.
* prompts are ``tasks.common.prompts.problem_messages``, so a checkpoint is asked exactly what SFT
  trained on.
* :func:`score_completions`: answer from the answer tag and correctness by the answer contract
  (``tasks.common.answers.judge``, the same verdict as annotate's reverse verification and GRPO's
  correctness reward), format compliance (``tasks/verifiers/formatting.py``), completion length.
* :func:`answer_prefixes` + :func:`perturb_auroc`: PerturbQA as the benchmark scores it, a per-pair
  score P(yes) (``perturb_de``) or P(up) (``perturb_dir``) read off the next-token distribution
  right after the answer tag opens, then ROC AUC per downstream gene averaged over genes
  (``tasks.problems.baselines.per_gene_auroc``), per cell line, then over lines.

>>> macro_f1(["up", "down", "up"], ["up", None, "down"])
0.3333
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

import numpy as np
from sklearn.metrics import f1_score
import pandas as pd

from tasks.problems.baselines import per_gene_auroc
from tasks.common.answers import claimed_text, claimed_value, extract_answer, gold_value, judge
from tasks.verifiers.formatting import format_ok

PERTURB = {"perturb_de": ("yes", "no"), "perturb_dir": ("up", "down")}
LABEL_TYPES = ("label", "yes_no")


def select_test(problems: pd.DataFrame, cap: int | None, seed: int) -> pd.DataFrame:
    """Test problems, at most about ``cap`` per family (whole genes for PerturbQA families)."""
    test = problems[problems["split"] == "test"]
    parts = []
    for family, group in test.groupby("family", sort=True):
        if cap is None or len(group) <= cap:
            parts.append(group)
        elif family in PERTURB:
            keys = group["evidence"].map(lambda e: (json.loads(e)["cell_line"], json.loads(e)["gene"]))
            order = pd.Series(sorted(set(keys))).sample(frac=1, random_state=seed).tolist()
            chosen, count = set(), 0
            for key in order:
                if count >= cap:
                    break
                chosen.add(key)
                count += int((keys == key).sum())
            parts.append(group[keys.isin(chosen)])
        else:
            parts.append(group.sample(n=cap, random_state=seed))
    return pd.concat(parts).sort_values("id").reset_index(drop=True)


def _choices(row) -> list[str] | None:
    choices = list(row["choices"]) if row["choices"] is not None else []
    return choices or None


def score_problem(row, text: str, tag: str) -> dict:
    """One problem's score: the extracted answer, whether it is right (:func:`judge`), format, and
    what it claims (:func:`claimed_text`: the option it names, None when it names none)."""
    extracted, choices = extract_answer(text, tag), _choices(row)
    return {"extracted": extracted,
            "correct": judge(text, row["answer"], row["answer_type"], choices, tag),
            "format_ok": format_ok(text, tag),
            "claimed": claimed_text(extracted, row["answer_type"], choices)}


def score_completions(test: pd.DataFrame, completions: Sequence[str], n_tokens: Sequence[int],
                      tag: str) -> pd.DataFrame:
    """One row per problem: the extracted answer, whether it is right, format, length."""
    rows = []
    for (_, row), text, length in zip(test.iterrows(), completions, n_tokens):
        rows.append({"problem_id": row["id"], "family": row["family"],
                     "answer_type": row["answer_type"], "answer": row["answer"],
                     "completion": text, **score_problem(row, text, tag),
                     "completion_tokens": int(length)})
    return pd.DataFrame(rows, columns=["problem_id", "family", "answer_type", "answer", "completion",
                                       "extracted", "correct", "format_ok", "claimed", "completion_tokens"])


def macro_f1(gold: Sequence[str], predicted: Sequence[str | None]) -> float:
    """Macro-F1 over the gold classes; an unreadable answer counts as wrong for its gold class.

    >>> macro_f1(["a", "a", "b"], ["a", None, "b"])
    0.8333
    """
    classes = sorted(set(gold))
    predicted = ["" if p is None else p for p in predicted]  # "" is no class: wrong for any gold
    return round(float(f1_score(list(gold), predicted, labels=classes, average="macro",
                                zero_division=0)), 4)


def family_metrics(scored: pd.DataFrame) -> dict[str, dict]:
    """Accuracy, format rate and mean completion tokens per family; macro-F1 over label answers;
    over multiple-choice answers, the share that name one of the options at all (a model that
    cannot copy an option's text from its prompt answers with a name that is none of them)."""
    out = {}
    for family, group in scored.groupby("family", sort=True):
        entry = {"n": len(group), "accuracy": round(float(group["correct"].mean()), 4),
                 "format_rate": round(float(group["format_ok"].mean()), 4),
                 "mean_completion_tokens": round(float(group["completion_tokens"].mean()), 1)}
        choice = group[group["answer_type"] == "multiple_choice"]
        if len(choice):
            entry["names_an_option"] = round(float(choice["claimed"].notna().mean()), 4)
        labels = group[group["answer_type"].isin(LABEL_TYPES)]
        if len(labels):
            gold = [gold_value(a, t) for a, t in zip(labels["answer"], labels["answer_type"])]
            pred = [claimed_value(e, a, t) for e, a, t in
                    zip(labels["extracted"], labels["answer"], labels["answer_type"])]
            entry["macro_f1"] = macro_f1(gold, pred)
        out[family] = entry
    return out


def answer_prefixes(prompt_texts: Sequence[str], completions: Sequence[str], tag: str) -> tuple[list[str], list[bool]]:
    """Prompt + completion up to and including the opening answer tag; a completion without one
    gets the tag appended after its text (``forced``), so every pair is scored at the same point."""
    opener = re.compile(rf"<\s*{re.escape(tag)}\s*>", re.I)
    prefixes, forced = [], []
    for prompt, text in zip(prompt_texts, completions):
        match = opener.search(text)
        if match:
            prefixes.append(prompt + text[:match.end()])
            forced.append(False)
        else:
            prefixes.append(f"{prompt}{text}<{tag}>")
            forced.append(True)
    return prefixes, forced


def perturb_auroc(evidence: Sequence[str], scores: Sequence[float]) -> dict:
    """Per-gene AUROC per cell line (PerturbQA), and its mean over lines."""
    ev = pd.DataFrame([json.loads(e) for e in evidence])
    ev["score"] = list(scores)
    per_line = {}
    for line, part in ev.groupby("cell_line", sort=True):
        result = per_gene_auroc(part["gene"], part["label"], part["score"])
        if result["genes"]:
            per_line[line] = result
    values = [r["auroc"] for r in per_line.values()]
    return {"auroc": round(float(np.mean(values)), 4) if values else None, "per_line": per_line}
