"""Schema-valid stand-ins for the grpo stage: problems (verifier_fixtures' hand-made set with real
categories), annotate-style traces of their train problems, and a params file for the flow."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from tasks.annotate import traces as an
from tasks.common import schemas
from tasks.common.storage import write_table
from tests import verifier_fixtures as vf

CATEGORY = {"cell_type": "cell", "tf_binding": "dna", "protein_family": "protein",
            "rare_disease": "clinical", "causal_gene": "clinical", "perturb_de": "cell", "perturb_dir": "cell"}
VARIANTS = {"gold": {"fraction": 1.0, "reward": 1.0}, "short": {"fraction": 0.6, "reward": 0.5},
            "long": {"fraction": 0.3, "reward": 0.5}, "redundant": {"fraction": 0.3, "reward": 0.7},
            "no_reason": {"fraction": 0.2, "reward": 0.2}, "negative": {"fraction": 1.0, "reward": -1.0}}


def problems() -> pd.DataFrame:
    table = vf.problems()
    table["category"] = table["family"].map(CATEGORY).fillna("cell")
    return table


def traces(table: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Gold traces and their variants (annotate's own ``variants``) for every train problem."""
    rows = []
    train = table[table["split"] == "train"]
    pool = [f"Background fact {i} about the assay." for i in range(6)]
    for r in train.itertuples(index=False):
        trace = an.Trace(steps=[f"The evidence for {r.id} is read.", "The key feature is weighed.",
                                "Alternatives are ruled out."], conclusion=f"So the answer is {r.answer}.")
        answers = sorted(set(train.loc[train["family"] == r.family, "answer"]))
        base = {"problem_id": r.id, "family": r.family, "gold_answer": r.answer, "teacher": "test"}
        for var in an.variants(r.id, trace, r.answer, r.answer_type, list(r.choices), pool, answers,
                               VARIANTS, seed):
            rows.append(base | var | {"status": "verified" if var["variant"] == "gold" else "derived",
                                      "rejection_reason": None})
    rows.append({"problem_id": "rejected-1", "family": "cell_type", "variant": "gold", "steps": [],
                 "conclusion": "", "answer": "", "gold_answer": "x", "reward": None, "status": "rejected",
                 "teacher": "test", "rejection_reason": "no_parse"})
    return pd.DataFrame(rows)


def write_inputs(root: Path) -> None:
    table = problems()
    write_table(table, root / "data/problems/problems.parquet", schemas.Problems)
    write_table(traces(table), root / "data/annotate/traces.parquet", schemas.Traces)
    vf.write_corpus(root / "data/corpus")


def write_params(root: Path, project: Path, init: str, **grpo_smoke) -> dict:
    raw = yaml.safe_load((project / "params.yaml").read_text())
    smoke = {"mode": "offline_then_online", "problems_per_family": 2, "max_prompt_tokens": 400,
             "online": {"steps": 2, "num_generations": 2, "prompts_per_step": 2,
                        "max_completion_length": 8, "save_steps": 1},
             "offline": {"max_steps": 2, "groups_per_step": 1, "max_length": 1536, "save_steps": 1,
                         "logging_steps": 1},
             "room": {"problems_per_family": 0},
             "heldout": {"problems_per_family": 1, "max_new_tokens": 8}}
    for key, value in grpo_smoke.items():
        smoke[key] = {**smoke.get(key, {}), **value} if isinstance(value, dict) else value
    grpo = {**raw["grpo"], "init": init, "profiles": {"smoke": smoke}}
    params = {"base": {"seed": 0, "profile": "smoke"}, "grpo": grpo, "verifiers": raw["verifiers"],
              "annotate": raw["annotate"], "generation": {**raw["generation"], "engine": "transformers"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    return params
