"""A small schema-valid problem set with every answer form the evaluate stage scores."""
from __future__ import annotations

import json
import random

import pandas as pd

from tasks.common import schemas

DISEASES = ["Marfan syndrome (OMIM:154700)", "Mirage syndrome (OMIM:617053)",
            "Noonan syndrome 10 (OMIM:616564)", "Pachyonychia congenita 3 (OMIM:615726)"]
GENES = ["ISCA2", "GNPAT", "SH3TC2", "ASCC1"]


def _row(i, family, category, prompt, answer, answer_type, split, choices=(), evidence=None):
    return {"id": f"{family}-{i}", "family": family, "category": category, "task_kind": "",
            "modality": "text", "prompt": prompt, "answer": answer, "answer_type": answer_type,
            "choices": list(choices), "evidence": json.dumps(evidence or {}), "split": split,
            "source_ids": [], "entity": f"{family}:{i}"}


def problems(seed: int = 0, per_split: int = 8) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for split in ("train", "test"):
        for i in range(per_split):
            k = f"{split}{i}"
            label = rng.choice(["T cell", "B cell", "NK cell"])
            rows.append(_row(k, "cell_type", "cell", "<cell>CD3D, MS4A1</cell> Which cell type?",
                             label, "label", split))
            rows.append(_row(k, "rare_disease", "clinical", "Phenotypes: seizure. Which disease?",
                             rng.choice(DISEASES), "multiple_choice", split, rng.sample(DISEASES, 4)))
            rows[-1]["answer"] = rng.choice(rows[-1]["choices"])
            rows.append(_row(k, "causal_gene", "clinical", "Phenotypes: ataxia. Which gene?",
                             "", "multiple_choice", split, rng.sample(GENES, 4)))
            rows[-1]["answer"] = rng.choice(rows[-1]["choices"])
            for task, fam, atype in (("de", "perturb_de", "yes_no"), ("dir", "perturb_dir", "label")):
                gene = f"G{i % 3}"
                lab = rng.randint(0, 1)
                answer = ("yes" if lab else "no") if task == "de" else ("up" if lab else "down")
                ev = {"cell_line": rng.choice(["k562", "rpe1"]), "gene": gene, "label": lab,
                      "pert": f"P{i}", "task": task, "neighbour_score": rng.random(),
                      "n_neighbours": 1, "neighbours": [], "gene_train_pairs": 3, "gene_train_rate": 0.5}
                rows.append(_row(k, fam, "clinical", f"Knockdown of P{i}: is {gene} changed?",
                                 answer, atype, split, evidence=ev))
    return schemas.Problems.validate(pd.DataFrame(rows))
