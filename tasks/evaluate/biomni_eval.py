"""Score a predictions file in Biomni-Eval1 form with Biomni-Eval1's rules, for the formats we share.

A predictions file (parquet, CSV or JSON lines) has one row per instance: ``task_name``,
``task_instance_id``, ``answer`` (the ground truth as Biomni-Eval1 stores it) and ``prediction``
(the model's answer text). The rules follow ``biomni/eval/biomni_eval1.py``'s ``_compute_reward``:

* ``rare_disease_diagnosis``: JSON ``{"disease_name": ..., "OMIM_ID": ...}`` on both sides,
  compared on the OMIM id (read by ``tasks.common.answers``, so ``OMIM:154700`` = ``154700``).
* ``gwas_causal_gene_*``, ``screen_gene_retrieval``: one gene symbol, case-insensitive.
* ``patient_gene_detection``: JSON ``{"causal_gene": [...]}``, right when any predicted gene is a
  true one (the truth is comma-separated); symbols compared case-insensitively here.
* ``lab_bench_*``, ``hle``, ``crispr_delivery``: a letter, case-insensitive.

Other tasks raise: a score for a format we do not implement would be invented.
:func:`to_biomni` writes our ``rare_disease`` and ``causal_gene`` predictions in this form.

    python -m tasks.evaluate.biomni_eval predictions.parquet     # prints per-task mean reward as JSON

>>> score("rare_disease_diagnosis", '{"disease_name": "x", "OMIM_ID": "OMIM:154700"}',
...       '{"disease_name": "Marfan syndrome", "OMIM_ID": "154700"}')
1.0
>>> score("gwas_causal_gene_opentargets", " brca1 ", "BRCA1"), score("lab_bench_seqqa", "b", "C")
(1.0, 0.0)
"""
from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import pandas as pd

from tasks.common.answers import json_omim_id, omim_id, parse_json_answer

COLUMNS = ["task_name", "task_instance_id", "answer", "prediction"]
LETTER_TASKS = ("lab_bench", "hle", "crispr_delivery")
GENE_TASKS = ("gwas_causal_gene", "screen_gene_retrieval")


def _as_dict(text) -> dict | None:
    if isinstance(text, dict):
        return text
    if not isinstance(text, str):
        return None
    obj = parse_json_answer(text)
    if obj is None:  # Biomni also accepts a Python dict literal
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            return None
        obj = value if isinstance(value, dict) else None
    return obj


def score(task_name: str, prediction, answer) -> float:
    """Biomni-Eval1 reward (0 or 1) of one prediction."""
    if prediction is None or (isinstance(prediction, float) and pd.isna(prediction)):
        return 0.0
    if task_name == "rare_disease_diagnosis":
        claimed = json_omim_id(prediction) if isinstance(prediction, str) else None
        truth = json_omim_id(answer) or omim_id(answer)
        return float(claimed is not None and claimed == truth)
    if task_name.startswith(GENE_TASKS):
        return float(str(prediction).strip().upper() == str(answer).strip().upper())
    if task_name == "patient_gene_detection":
        obj = _as_dict(prediction)
        if obj is None:
            return 0.0
        genes = obj.get("causal_gene", [])
        genes = genes if isinstance(genes, list) else [genes]
        truth = {g.strip().upper() for g in str(answer).split(",")}
        return float(bool({str(g).strip().upper() for g in genes} & truth))
    if task_name.startswith(LETTER_TASKS):
        return float(str(prediction).strip().upper() == str(answer).strip().upper())
    raise ValueError(f"Biomni-Eval1 task {task_name!r}: no scoring rule here")


def score_table(predictions: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing column(s) {missing}; expected {COLUMNS}")
    out = predictions.copy()
    out["reward"] = [score(t, p, a) for t, p, a in
                     zip(out["task_name"], out["prediction"], out["answer"])]
    return out


def summary(scored: pd.DataFrame) -> dict[str, dict]:
    return {task: {"n": len(g), "reward": round(float(g["reward"].mean()), 4)}
            for task, g in scored.groupby("task_name", sort=True)}


def _disease_json(choice_text: str | None) -> str | None:
    """``Mirage syndrome (OMIM:617053)`` -> Biomni's JSON answer form."""
    if choice_text is None:
        return None
    number = omim_id(choice_text)
    if number is None:
        return None
    name = choice_text.split("(OMIM", 1)[0].strip()
    return json.dumps({"disease_name": name, "OMIM_ID": f"OMIM:{number}"})


def to_biomni(predictions: pd.DataFrame) -> pd.DataFrame:
    """Our rare_disease / causal_gene predictions in Biomni-Eval1 form (per checkpoint).

    ``predictions`` needs checkpoint, problem_id, family, answer, claimed (the choice text the
    model's answer names, or None).
    """
    rows = []
    for r in predictions.itertuples():
        if r.family == "rare_disease":
            rows.append({"checkpoint": r.checkpoint, "task_name": "rare_disease_diagnosis",
                         "task_instance_id": r.problem_id, "answer": _disease_json(r.answer),
                         "prediction": _disease_json(r.claimed)})
        elif r.family == "causal_gene":
            rows.append({"checkpoint": r.checkpoint, "task_name": "patient_gene_detection",
                         "task_instance_id": r.problem_id, "answer": r.answer,
                         "prediction": None if r.claimed is None else
                         json.dumps({"causal_gene": [r.claimed]})})
    return pd.DataFrame(rows, columns=["checkpoint", *COLUMNS])


def read_predictions(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pd.read_json(path, lines=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", help="parquet, CSV or JSON-lines file in Biomni-Eval1 form")
    args = parser.parse_args(argv)
    try:
        scored = score_table(read_predictions(args.predictions))
    except ValueError as err:
        sys.exit(f"{args.predictions}: {err}")
    print(json.dumps(summary(scored), indent=2))


if __name__ == "__main__":
    main()
