"""Hand-made problems and corpus tables for the verifier tests (small, real formats)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tasks.common import schemas
from tasks.common.params import Verifiers
from tasks.common.storage import write_table

SETTINGS = Verifiers(weights={"correctness": 1.0, "format": 0.2, "cell_type": 0.5, "tf_binding": 0.5,
                              "protein_family": 0.5, "phenotype": 0.5, "perturbation": 0.5,
                              "length": 0.1, "repetition": 0.1}, length_budget=50)

T_GENES = ["CD3D", "CD3E", "IL7R", "LTB", "CD2"]
B_GENES = ["CD79A", "MS4A1", "CD79B", "CD74", "HLA-DRA"]
M_GENES = ["LYZ", "CD14", "S100A8", "S100A9", "FCN1"]
HOUSEKEEPING = ["ACTB", "B2M", "MALAT1", "TMSB4X"]

# Two sharp motifs: an E-box (CACGTG) and a GATA site (AGATAA), as per-position ACGT frequencies.
def _pfm(consensus: str, sharp: float = 0.91) -> list[list[float]]:
    rest = (1 - sharp) / 3
    return [[sharp if b == base else rest for b in "ACGT"] for base in consensus]


MOTIFS = pd.DataFrame({
    "motif_id": ["MA9001.1", "MA9002.1", "MA9003.1"], "tf_name": ["EBOX1", "GATAX", "SOXY"],
    "tf_class": ["bHLH", "GATA", "HMG"], "tf_family": ["x", "y", "z"], "length": [6, 6, 7],
    "pfm": [_pfm("CACGTG"), _pfm("AGATAA"), _pfm("ACAAAGG")], "counts_consistent": [True] * 3})


def cell_sentence(markers: list[str], shift: int) -> str:
    genes = markers[shift:] + HOUSEKEEPING + markers[:shift]
    return "<cell>" + ", ".join(genes) + "</cell>"


def _row(id_, family, prompt, answer, answer_type, split, entity, source_ids, evidence=None, choices=None):
    return {"id": id_, "family": family, "category": "x", "task_kind": "annotation", "modality": "x",
            "prompt": prompt, "answer": answer, "answer_type": answer_type, "choices": choices or [],
            "evidence": json.dumps(evidence or {}), "split": split, "source_ids": source_ids,
            "entity": entity}


def problems() -> pd.DataFrame:
    rows = []
    types = {"T cell": T_GENES, "B cell": B_GENES, "Monocyte": M_GENES}
    for t, (label, genes) in enumerate(types.items()):
        for i in range(6):
            cid = f"c{t}{i}"
            split = "test" if i == 5 else "train"
            sentence = cell_sentence(genes, i % 3)
            if split == "test":  # a gene no training cell has: must not reach the classifier
                sentence = sentence.replace("</cell>", ", TESTONLY1</cell>")
            kind = "multiple_choice" if i % 2 else "label"
            rows.append(_row(f"cell-{cid}", "cell_type", f"Cell {sentence} Which type?", label, kind,
                             split, f"cell:{cid}", [cid], {"cell_type": label},
                             list(types) if kind == "multiple_choice" else None))
    for line, pert, gene, task, label, split in [
            ("k562", "P1", "G1", "de", "yes", "train"), ("k562", "P9", "G1", "de", "no", "test"),
            ("k562", "P2", "G2", "dir", "up", "train"), ("k562", "P9", "G2", "dir", "down", "test")]:
        rows.append(_row(f"{task}-{pert}-{gene}", f"perturb_{task}", f"Knockdown of {pert}: {gene}?", label,
                         "yes_no" if task == "de" else "label", split, f"perturbation:{line}:{pert}",
                         [line, pert, gene], {"cell_line": line, "pert": pert, "gene": gene, "task": task}))
    return pd.DataFrame(rows)


def perturbqa() -> pd.DataFrame:
    """G1 responds to nearly every knockdown, G3 to none; up for G2, down for G4.

    P9 is train in PerturbQA's own table but test in problems: it must be left out.
    """
    rows = []
    for p in [f"P{i}" for i in range(1, 10)]:
        for gene, de in [("G1", 1), ("G3", 0), ("G2", 1), ("G4", 1), ("G5", int(p in ("P1", "P2")))]:
            rows.append(("k562", "de", p, gene, de, "train"))
        rows += [("k562", "dir", p, "G2", 1, "train"), ("k562", "dir", p, "G4", 0, "train")]
    rows.append(("k562", "de", "P10", "G1", 1, "test"))
    return pd.DataFrame(rows, columns=["cell_line", "task", "pert", "gene", "label", "split"])


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_table(MOTIFS, folder / "motifs.parquet", schemas.Motifs)
    write_table(pd.DataFrame({"name": ["LuxC", "KR", "Thioesterase"],
                              "accession": ["PF05893.5", "KR", "Thioesterase"],
                              "description": ["Acyl-CoA reductase (LuxC)", "", ""],
                              "length": [400, 262, 250],
                              "hmm_file": ["LuxC.hmm", "KR.hmm", "Thioesterase.hmm"]}),
                folder / "protein_families.parquet", schemas.ProteinFamilies)
    # Seizures/ataxia disease vs a skeletal disease, and one gene each
    neuro = ["HP:0001250", "HP:0001251", "HP:0001263", "HP:0002353"]
    skeletal = ["HP:0002650", "HP:0001166", "HP:0000545", "HP:0001519"]
    write_table(pd.DataFrame(
        [{"disease_id": "OMIM:100001", "source": "OMIM", "disease_name": "Neuro syndrome", "hpo_id": h}
         for h in neuro] +
        [{"disease_id": "OMIM:100002", "source": "OMIM", "disease_name": "Skeletal syndrome", "hpo_id": h}
         for h in skeletal]), folder / "disease_phenotypes.parquet", schemas.DiseasePhenotypes)
    write_table(pd.DataFrame(
        [{"gene_symbol": "SCN1A", "gene_id": 6323, "hpo_id": h} for h in neuro] +
        [{"gene_symbol": "FBN1", "gene_id": 2200, "hpo_id": h} for h in skeletal]),
        folder / "gene_phenotypes.parquet", schemas.GenePhenotypes)
    write_table(perturbqa(), folder / "perturbqa.parquet", schemas.PerturbPairs)
    return folder
