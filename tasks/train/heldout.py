"""A short held-out check: checkpoints answer the same test problems greedily, scored per family.

Accuracy comes from :mod:`tasks.common.answers` (the answer tag, normalised and compared), the
mean reward from the same weighted verifiers GRPO trained on (:mod:`tasks.verifiers.compose`),
format compliance from :mod:`tasks.verifiers.formatting`. The evaluate stage does the full table;
this is the grpo stage's own evidence that its checkpoint moved, and which way.

>>> per_family(pd.DataFrame({"model": ["a", "a"], "family": ["x", "x"], "correct": [1.0, 0.0],
...                          "reward": [1.2, 0.0], "format_ok": [1.0, 1.0]}))
  model family  problems  accuracy  reward  format
0     a      x         2       0.5     0.6     1.0
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from tasks.common.answers import judge
from tasks.common.params import Generation, Verifiers
from tasks.lm.generate import generate
from tasks.train.grpo_data import VERIFIER_COLUMNS
from tasks.verifiers.compose import combine, reward_function
from tasks.verifiers.fitted import VerifierBundle


def score_completions(rows: pd.DataFrame, completions: list[str], bundle: VerifierBundle,
                      settings: Verifiers) -> pd.DataFrame:
    """Per problem: correct (0/1), the weighted verifier reward and format compliance."""
    columns = {c: list(rows[c]) for c in VERIFIER_COLUMNS if c in rows}
    prompts = list(rows["prompt"])
    # the weighted verifiers in the weights' order (one sum), and format, reported whatever its weight
    names = dict.fromkeys([*(n for n, w in settings.weights.items() if w != 0), "format"])
    per = {name: reward_function(name, bundle, settings)(prompts, completions, **columns) for name in names}
    out = rows[["id", "family"]].copy()
    out["completion"] = completions
    out["correct"] = [float(judge(c, a, t, list(ch), settings.answer_tag))
                      for c, a, t, ch in zip(completions, rows["answer"], rows["answer_type"], rows["choices"])]
    out["reward"] = combine(per, settings.weights)
    out["format_ok"] = per["format"]
    return out


def heldout_check(models: Mapping[str, str | Path], rows: pd.DataFrame, bundle: VerifierBundle,
                  settings: Verifiers, max_new_tokens: int, generation: Generation,
                  seed: int) -> pd.DataFrame:
    """Greedy completions of every model on ``rows`` (a rollout-prompt table), scored."""
    scored = []
    for name, model_dir in models.items():
        texts = generate(model_dir, list(rows["prompt"]), max_new_tokens=max_new_tokens,
                         temperature=0.0, seed=seed, settings=generation)
        table = score_completions(rows, [t[0] for t in texts], bundle, settings)
        table.insert(0, "model", name)
        scored.append(table)
    return pd.concat(scored, ignore_index=True)


def per_family(scored: pd.DataFrame) -> pd.DataFrame:
    """Problems, accuracy, mean reward and format rate per model and family (and ``all``)."""
    every = scored.assign(family="all")
    both = pd.concat([scored, every], ignore_index=True) if scored["family"].nunique() > 1 else scored
    table = both.groupby(["model", "family"], sort=True).agg(
        problems=("correct", "size"), accuracy=("correct", "mean"), reward=("reward", "mean"),
        format=("format_ok", "mean")).reset_index()
    return table.round(4)
