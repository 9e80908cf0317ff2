"""Which families online GRPO trains on: those whose train problems the start checkpoint answers
sometimes right and sometimes wrong.

A group of completions that are all right or all wrong has no correctness advantage: GRPO then
learns only from format and the soft verifiers. So before training, the start checkpoint samples
``samples`` completions for each of ``problems_per_family`` train problems of every family, the way
the rollouts are sampled (temperature, top-p, completion length), and each is judged by the answer
contract (:func:`tasks.common.answers.judge`, the correctness reward's own verdict; the reward also
asks for a well-formed reply where ``verifiers.answer_needs_format``, the check does not: it asks
whether the model's answers vary). A family is kept when its accuracy lies strictly between
``min_accuracy`` and ``max_accuracy``.

>>> judged = pd.DataFrame({"id": ["a", "a", "b", "b", "c", "c"], "family": ["x", "x", "x", "x", "y", "y"],
...                        "correct": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]})
>>> families_with_room(judged, 0.0, 1.0)
  family  problems  samples  accuracy  groups_with_variance   kept
0      x         2        4      0.25                   0.5   True
1      y         1        2      0.00                   0.0  False
"""
from __future__ import annotations

import pandas as pd

from tasks.common.answers import judge
from tasks.common.params import Generation
from tasks.lm.generate import generate

#: The columns of the family check's table (``reports/grpo/room.csv``), empty when the check is off.
ROOM_COLUMNS = ["family", "problems", "samples", "accuracy", "groups_with_variance", "kept"]


def sample_correctness(model_dir: str, rows: pd.DataFrame, samples: int, max_new_tokens: int,
                       temperature: float, top_p: float, tag: str, generation: Generation,
                       seed: int) -> pd.DataFrame:
    """``samples`` sampled completions of ``model_dir`` per row of a rollout-prompt table, judged:
    one row per completion (id, family, sample, correct, completion)."""
    texts = generate(model_dir, list(rows["prompt"]), max_new_tokens=max_new_tokens,
                     temperature=temperature, top_p=top_p, n=samples, seed=seed, settings=generation)
    out = []
    for rec, group in zip(rows.to_dict("records"), texts):
        for i, text in enumerate(group):
            out.append({"id": rec["id"], "family": rec["family"], "sample": i, "completion": text,
                        "correct": float(judge(text, rec["answer"], rec["answer_type"],
                                               list(rec["choices"]), tag))})
    return pd.DataFrame(out, columns=["id", "family", "sample", "completion", "correct"])


def families_with_room(judged: pd.DataFrame, min_accuracy: float, max_accuracy: float) -> pd.DataFrame:
    """Per family: problems, samples, accuracy over all samples, the share of problems whose samples
    disagree (the groups that carry a correctness advantage), and whether the family is kept
    (``min_accuracy < accuracy < max_accuracy``)."""
    per_problem = judged.groupby(["family", "id"], sort=True)["correct"].agg(["mean", "size"]).reset_index()
    per_problem["varies"] = (per_problem["mean"] > 0) & (per_problem["mean"] < 1)
    table = per_problem.groupby("family", sort=True).agg(
        problems=("id", "size"), samples=("size", "sum"), varies=("varies", "mean")).reset_index()
    table["accuracy"] = (judged.groupby("family", sort=True)["correct"].mean()
                         .reindex(table["family"]).to_numpy())
    table = table.rename(columns={"varies": "groups_with_variance"})
    table["kept"] = (table["accuracy"] > min_accuracy) & (table["accuracy"] < max_accuracy)
    return table[ROOM_COLUMNS].round(4)
