"""Summaries of the problem set: counts, answer balance, prompt lengths, sample problems.

Prompt lengths are regex word/punctuation tokens (:func:`tasks.problems.records.count_tokens`);
the model's tokenizer does not exist until the pretrain stage.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tasks.common.answers import LETTERS
from tasks.problems.records import count_tokens


def counts(df: pd.DataFrame) -> dict:
    def table(col: str) -> dict:
        g = df.groupby([col, "split"]).size()
        return {k: {s: int(g.get((k, s), 0)) for s in ("train", "test")} for k in sorted(df[col].unique())}
    return {"total": len(df), "per_split": {s: int((df["split"] == s).sum()) for s in ("train", "test")},
            "per_family": table("family"), "per_category": table("category")}


def answer_balance(df: pd.DataFrame) -> dict:
    """Per family: share of each answer letter (multiple choice) and of yes/no and up/down."""
    out = {}
    for family, g in df.groupby("family", sort=True):
        entry = {}
        mc = g[g["answer_type"] == "multiple_choice"]
        if len(mc):
            pos = [list(c).index(a) for a, c in zip(mc["answer"], mc["choices"])]
            entry["answer_position"] = {LETTERS[k]: round(v, 4) for k, v in
                                        sorted(pd.Series(pos).value_counts(normalize=True).items())}
        binary = g[g["answer"].isin(["yes", "no", "up", "down"])]
        if len(binary):
            entry["binary_answers"] = {k: round(v, 4) for k, v in
                                       binary["answer"].value_counts(normalize=True).items()}
        labels = g[g["answer_type"].isin(["label", "multiple_choice"])]["answer"]
        top = labels.value_counts(normalize=True)
        entry["distinct_answers"] = int(labels.nunique())
        entry["most_common_answer_share"] = round(float(top.iloc[0]), 4) if len(top) else None
        out[family] = entry
    return out


def prompt_lengths(df: pd.DataFrame) -> tuple[dict, pd.DataFrame]:
    """Token quantiles per family, and a histogram table (``tokens`` bin start, ``count``)."""
    tokens = df["prompt"].map(count_tokens)
    stats = {f: {"min": int(t.min()), "median": float(t.median()), "p95": float(t.quantile(0.95)),
                 "max": int(t.max())} for f, t in tokens.groupby(df["family"], sort=True)}
    edges = np.arange(0, int(tokens.max()) + 51, 50)
    hist, _ = np.histogram(tokens, bins=edges)
    return stats, pd.DataFrame({"tokens": edges[:-1], "count": hist})


def samples_markdown(df: pd.DataFrame, family: str, n: int, seed: int) -> str:
    """``n`` problems of one family as markdown (prompt, answer, split, evidence)."""
    g = df[df["family"] == family]
    picked = g.sample(min(n, len(g)), random_state=seed).sort_values("id")
    parts = [f"# {family}: {len(g)} problems, {n} samples\n"]
    for r in picked.itertuples(index=False):
        evidence = json.dumps(json.loads(r.evidence), indent=1)
        if len(evidence) > 3000:
            evidence = evidence[:3000] + "\n... (truncated)"
        parts.append(f"## {r.id} ({r.split}, {r.answer_type}, entity `{r.entity}`)\n\n"
                     f"```text\n{r.prompt}\n```\n\n**Answer:** `{r.answer}`\n\n"
                     f"<details><summary>evidence</summary>\n\n```json\n{evidence}\n```\n</details>\n")
    return "\n".join(parts)
