"""Building the verifiers' folder once (fit on the training split, copy knowledge) and loading it.

``fit_verifiers`` fits the two learnt verifiers on training entities only and copies the knowledge
the others read, so the folder is all the grpo and evaluate stages need (no pickles: safetensors,
JSON, parquet and HMMER text files):

- ``cell_type.safetensors`` + ``cell_type.json``: classifier on cell sentences of training cells;
- ``perturb_*.parquet`` + ``perturbation.json``: PerturbQA rate model on training pairs, minus
  every perturbation the problems table puts in test;
- ``motifs.parquet``, ``protein_families.parquet`` + ``hmms/``, ``disease_phenotypes.parquet``,
  ``gene_phenotypes.parquet``: knowledge for the PSSM, HMMER and HPO verifiers;
- ``manifest.json``: what was fitted on how many entities, and the training entities themselves.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tasks.corpus import knowledge

from tasks.common import schemas
from tasks.common.errors import InputError
from tasks.common.params import Verifiers
from tasks.common.storage import atomic_path, read_table
from tasks.verifiers.cell_type import CellTypeModel, fit_cell_type, genes_of
from tasks.verifiers.perturbation import PerturbationModel, fit_perturbation
from tasks.verifiers.phenotype import PhenotypeScorer
from tasks.verifiers.protein_family import FamilyScorer
from tasks.verifiers.tf_binding import MotifScorer

PROBLEM_COLUMNS = ["id", "family", "prompt", "answer", "answer_type", "evidence", "split",
                   "source_ids", "entity"]
KNOWLEDGE = {"motifs": schemas.Motifs, "protein_families": schemas.ProteinFamilies,
             "disease_phenotypes": schemas.DiseasePhenotypes, "gene_phenotypes": schemas.GenePhenotypes}


@dataclass
class VerifierBundle:
    """Everything the soft verifiers score with; a member is None when it could not be fitted."""

    cell_type: CellTypeModel | None
    perturbation: PerturbationModel | None
    motifs: MotifScorer
    families: FamilyScorer
    phenotypes: PhenotypeScorer


def _check_problems(problems: pd.DataFrame, source: str) -> None:
    missing = [c for c in PROBLEM_COLUMNS if c not in problems.columns]
    if missing:
        raise InputError(source, "columns", f"problems table lacks {missing}")


def training_cells(problems: pd.DataFrame) -> pd.DataFrame:
    """One row per training cell (cell_id, genes, label) from the cell_type problems of train.

    The open-label and multiple-choice variants carry the type as their answer; the explanation
    variant names it in its evidence.
    """
    rows = problems[(problems["family"] == "cell_type") & (problems["split"] == "train")]
    out = []
    for r in rows.itertuples(index=False):
        label = r.answer if r.answer_type in ("label", "multiple_choice") else \
            json.loads(r.evidence or "{}").get("cell_type")
        genes = genes_of(r.prompt)
        if label and genes:
            out.append({"cell_id": str(list(r.source_ids)[0]), "genes": genes, "label": label})
    cells = pd.DataFrame(out, columns=["cell_id", "genes", "label"])
    return cells.drop_duplicates("cell_id", ignore_index=True)


def held_out_entities(problems: pd.DataFrame) -> set[str]:
    return set(problems.loc[problems["split"] == "test", "entity"])


def training_pairs(perturbqa: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    """PerturbQA training pairs whose perturbation (cell line, knockdown) is not a test entity."""
    held_out = held_out_entities(problems)
    train = perturbqa[perturbqa["split"] == "train"]
    entity = "perturbation:" + train["cell_line"] + ":" + train["pert"]
    return train[~entity.isin(held_out)].reset_index(drop=True)


def fit_verifiers(problems: pd.DataFrame, corpus_dir: str | Path, out_dir: str | Path,
                  settings: Verifiers, seed: int = 0) -> dict:
    """Fit on the training split, copy knowledge, write ``out_dir`` atomically; return the manifest."""
    corpus_dir = Path(corpus_dir)
    _check_problems(problems, "problems")
    tables = {name: read_table(corpus_dir / f"{name}.parquet", schema) for name, schema in KNOWLEDGE.items()}
    manifest: dict = {"fitted_on": "train", "settings": settings.model_dump(mode="json")}

    cells = training_cells(problems)
    cell_model = None
    if cells["label"].nunique() >= 2:
        cell_model = fit_cell_type(list(cells["genes"]), list(cells["label"]), settings.cell_type_c, seed)
    manifest["cell_type"] = {"cells": len(cells), "types": sorted(cells["label"].unique()),
                             "genes": len(cell_model.genes) if cell_model else 0,
                             "train_entities": sorted("cell:" + cells["cell_id"])}

    pert_model = None
    perturbqa_path = corpus_dir / "perturbqa.parquet"
    if perturbqa_path.exists():
        pairs = training_pairs(read_table(perturbqa_path, schemas.PerturbPairs), problems)
        if not pairs.empty:
            pert_model = fit_perturbation(pairs, settings.perturbation_prior_strength, seed)
        manifest["perturbation"] = {
            "pairs": len(pairs), "coef": pert_model.coef if pert_model else None,
            "train_entities": sorted({f"perturbation:{l}:{p}" for l, p in zip(pairs["cell_line"], pairs["pert"])})}

    with atomic_path(out_dir) as out:
        out.mkdir()
        if cell_model:
            cell_model.save(out)
        if pert_model:
            pert_model.save(out)
        for name, df in tables.items():
            df.to_parquet(out / f"{name}.parquet", index=False)
        (out / "hmms").mkdir()
        for hmm_file in sorted(set(tables["protein_families"]["hmm_file"])):
            source = knowledge.hmm_dir() / hmm_file
            if not source.exists():
                raise InputError(corpus_dir / "protein_families.parquet", hmm_file,
                                 f"HMM file not found in {knowledge.hmm_dir()}")
            shutil.copy(source, out / "hmms" / hmm_file)
        (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def load_verifiers(out_dir: str | Path, settings: Verifiers) -> VerifierBundle:
    """Load a folder written by :func:`fit_verifiers` (the ontology itself loads on first use)."""
    out_dir = Path(out_dir)
    if not (out_dir / "manifest.json").exists():
        raise InputError(out_dir, "manifest.json", "missing: not a folder written by fit_verifiers")
    cell = CellTypeModel.load(out_dir) if (out_dir / "cell_type.json").exists() else None
    pert = PerturbationModel.load(out_dir) if (out_dir / "perturbation.json").exists() else None
    motifs = pd.read_parquet(out_dir / "motifs.parquet")
    return VerifierBundle(
        cell_type=cell, perturbation=pert,
        motifs=MotifScorer(motifs, settings.motif_background, settings.score_temperature),
        families=FamilyScorer(sorted((out_dir / "hmms").glob("*.hmm")), settings.score_temperature),
        phenotypes=PhenotypeScorer(pd.read_parquet(out_dir / "disease_phenotypes.parquet"),
                                   pd.read_parquet(out_dir / "gene_phenotypes.parquet"),
                                   settings.phenotype_method))
