"""Stage ``problems``: the SynBioCoT-style problem set with verifiable answers.

Reads the corpus tables and the textified cells, DNA windows and proteins (schema-checked on
read), assigns every entity to train or test once, builds each family, checks leakage and that
every family is in both splits, and writes ``data/problems/problems.parquet`` with metrics,
baselines, prompt-length histogram and sample problems under ``reports/problems``.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.common import schemas
from tasks.common.errors import InputError, run_stage
from tasks.corpus.knowledge import hmm_dir
from tasks.common.params import load_params
from tasks.common import splits
from tasks.problems import (alignment, baselines, cells, choices, clinical, dna, instruction,
                            integration, perturb, proteins, report)
from tasks.problems.records import COLUMNS, family_rng
from tasks.common.schemas import FAMILIES
from tasks.common.storage import atomic_path, read_table, write_csv, write_json, write_table
from tasks.common.tracking import stage_run

CORPUS, TEXTIFY = Path("data/corpus"), Path("data/textify")
OUT, REPORTS = Path("data/problems"), Path("reports/problems")
log = logging.getLogger("problems")

INPUTS = {"motifs": (CORPUS, schemas.Motifs), "protein_families": (CORPUS, schemas.ProteinFamilies),
          "perturbqa": (CORPUS, schemas.PerturbPairs), "markers": (CORPUS, schemas.Markers),
          "marker_cells": (CORPUS, schemas.MarkerCells),
          "disease_phenotypes": (CORPUS, schemas.DiseasePhenotypes),
          "disease_genes": (CORPUS, schemas.DiseaseGenes),
          "gene_phenotypes": (CORPUS, schemas.GenePhenotypes), "hpo_terms": (CORPUS, schemas.HpoTerms),
          "cells": (TEXTIFY, schemas.CellSentences), "dna": (TEXTIFY, schemas.DnaWindows),
          "proteins": (TEXTIFY, schemas.ProteinSequences)}


@task(cache_policy=NO_CACHE)
def read_inputs() -> dict[str, pd.DataFrame]:
    return {name: read_table(folder / f"{name}.parquet", schema)
            for name, (folder, schema) in INPUTS.items()}


family_members = task(proteins.family_members, cache_policy=NO_CACHE)
find_genes = task(alignment.find_genes, cache_policy=NO_CACHE)
cell_type_problems = task(cells.cell_type_problems, cache_policy=NO_CACHE)
perturb_problems = task(perturb.perturb_problems, cache_policy=NO_CACHE)
tf_binding_problems = task(dna.tf_binding_problems, cache_policy=NO_CACHE)
protein_family_problems = task(proteins.protein_family_problems, cache_policy=NO_CACHE)
rare_disease_problems = task(clinical.rare_disease_problems, cache_policy=NO_CACHE)
causal_gene_problems = task(clinical.causal_gene_problems, cache_policy=NO_CACHE)
dna_to_protein_problems = task(alignment.dna_to_protein_problems, cache_policy=NO_CACHE)
integration_problems = task(integration.integration_problems, cache_policy=NO_CACHE)


def entity_splits(data: dict, members: pd.DataFrame, genes: pd.DataFrame, eligible: pd.DataFrame,
                  test_fraction: float, seed: int) -> dict[str, str]:
    """One split per entity over every namespace's whole pool, stratified where it matters."""
    strata: dict[str, str] = {}
    strata.update(splits.cell_strata(data["cells"]["cell_id"], data["cells"]["label"]))
    strata.update({f"motif:{m}": f"motif|{m in set(eligible['motif_id'])}"
                   for m in data["motifs"]["motif_id"]})
    strata.update({f"disease:{d}": "disease" for d in data["disease_phenotypes"]["disease_id"].unique()})
    strata.update({f"gene:{g}": "gene" for g in data["gene_phenotypes"]["gene_symbol"].unique()})
    strata.update({f"protein:{p}": "protein" for p in data["proteins"]["protein_id"]})
    strata.update({f"protein:{p}": f"protein|{f}" for p, f in zip(members["protein_id"], members["family"])})
    strata.update({f"dna:{w}": "dna" for w in data["dna"]["window_id"]})
    strata.update({f"cds:{g}": "cds" for g in genes["gene_id"]})
    return splits.assign_splits(sorted(strata), test_fraction, seed, strata)


@flow(name="problems")
def problems_flow() -> None:
    params = load_params(require=("problems",))
    p, seed = params.problems, params.base.seed
    if p is None:
        raise InputError("params.yaml", "problems", "section missing")
    with stage_run("problems", params) as run:
        data = read_inputs()
        # cell-type and instruction prompts show the top genes; integration needs the whole
        # sentence, whose factor genes rank lower
        top_cells = data["cells"].assign(cell_sentence=[
            cells.top_genes(s, p.cell_sentence_genes) for s in data["cells"]["cell_sentence"]])
        motifs = data["motifs"]
        skipped_motifs = int((~motifs["counts_consistent"]).sum()) if p.tf_binding.require_consistent_counts else 0
        if p.tf_binding.require_consistent_counts:
            motifs = motifs[motifs["counts_consistent"]].reset_index(drop=True)
        hmms = proteins.load_hmms(data["protein_families"], hmm_dir())
        members, protein_stats = family_members(
            data["proteins"], hmms, p.protein_family.per_family, p.protein_family.max_length,
            p.protein_family.max_evalue, p.protein_family.emit, seed, family_rng(seed, "protein_family"))
        genes, gene_stats = find_genes(p.alignment.genomes, p.alignment.codon_table,
                                       p.alignment.min_cds, p.alignment.max_cds)
        vocabulary = {g for s in data["cells"]["cell_sentence"] for g in cells.genes_of(s)}
        eligible = integration.eligible_motifs(motifs, vocabulary)
        split_of = entity_splits(data, members, genes, eligible, p.test_fraction, seed)
        leaked = [c for c in data["marker_cells"]["cell_id"] if split_of.get(f"cell:{c}") == "test"]
        if leaked:
            raise splits.LeakageError(
                f"{len(leaked)} test cells shaped the marker genes (data/corpus/marker_cells.parquet), "
                f"e.g. {leaked[0]!r}: rerun the corpus stage with this base.seed and problems.test_fraction")

        rows, stats = {}, {"motifs_skipped_inconsistent_counts": skipped_motifs,
                           "motifs_with_scaled_counts": int((~data["motifs"]["counts_consistent"]).sum()),
                           "protein_family": protein_stats, "dna_to_protein_genes": gene_stats}
        rows["cell_type"], stats["cell_type"] = cell_type_problems(
            top_cells, data["markers"], split_of, p.cell_type.cells_per_type, p.n_choices,
            family_rng(seed, "cell_type"))
        rows["perturb"], stats["perturb_sampled"] = perturb_problems(
            data["perturbqa"], p.perturb.train_pairs_per_line, p.perturb.test_genes_per_line,
            p.perturb.test_pairs_per_gene, family_rng(seed, "perturb"))
        t = p.tf_binding
        rows["tf_binding"], stats["tf_binding"] = tf_binding_problems(
            motifs, data["dna"], split_of, t.motifs, t.window, t.min_site_score, t.margin,
            p.n_choices, t.tries, family_rng(seed, "tf_binding"), t.train_windows)
        rows["protein_family"] = protein_family_problems(
            members, data["protein_families"], split_of, p.n_choices, family_rng(seed, "protein_family_mc"))
        ontology = clinical.Ontology(data["hpo_terms"])
        rows["rare_disease"], stats["rare_disease"] = rare_disease_problems(
            data["disease_phenotypes"], ontology, split_of, p.clinical, p.n_choices,
            family_rng(seed, "rare_disease"))
        rows["causal_gene"], stats["causal_gene"] = causal_gene_problems(
            data["disease_phenotypes"], data["disease_genes"], data["gene_phenotypes"], ontology,
            split_of, p.clinical, p.n_choices, family_rng(seed, "causal_gene"))
        a = p.alignment
        rows["dna_to_protein"], stats["dna_to_protein"] = dna_to_protein_problems(
            genes, split_of, a.genes, a.codon_table, a.length_tolerance, p.n_choices,
            family_rng(seed, "dna_to_protein"))
        g = p.integration
        rows["integration"], stats["integration"] = integration_problems(
            data["cells"], eligible, data["dna"], split_of, g.quads, g.window, g.min_site_score,
            g.margin, g.tries, family_rng(seed, "integration"))
        i, rng = p.instruction, family_rng(seed, "instruction_alignment")
        rows["instruction"] = (instruction.cell_problems(top_cells, i.cells, split_of, rng)
                               + instruction.dna_problems(data["dna"], i.dna_windows, i.dna_min_length,
                                                          i.gc_edges, split_of, rng, i.dna_length_every)
                               + instruction.protein_problems(data["proteins"], i.proteins,
                                                              i.protein_max_length, split_of, rng))

        table = pd.DataFrame([r for family_rows in rows.values() for r in family_rows], columns=COLUMNS)
        splits.check_leakage(table)
        splits.check_families_present(table, FAMILIES)
        table = table.sort_values(["family", "id"], ignore_index=True)

        mc = table[table["answer_type"] == "multiple_choice"]
        surface = {f: choices.surface_cue_accuracy(g[g["split"] == "train"], g[g["split"] == "test"])
                   for f, g in mc.groupby("family", sort=True) if g["split"].nunique() == 2}
        family_base = baselines.family_baselines(table)
        perturb_base = baselines.perturb_baselines(table, data["perturbqa"])
        lengths, histogram = report.prompt_lengths(table)

        with atomic_path(OUT) as out:
            out.mkdir()
            write_table(table, out / "problems.parquet", schemas.Problems)
        metrics = {"counts": report.counts(table), "answer_balance": report.answer_balance(table),
                   "prompt_tokens": lengths, "prompt_tokenizer": "regex \\w+|[^\\w\\s]",
                   "surface_cue": surface, "generation": stats}
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"rows": len(table)}
        write_json(summary, REPORTS / "summary.json")
        write_json({"families": family_base, "perturbqa_per_gene_auroc": perturb_base},
                   REPORTS / "baselines.json")
        write_csv(histogram, REPORTS / "prompt_lengths.csv")
        with atomic_path(REPORTS / "samples") as folder:
            folder.mkdir()
            for family in FAMILIES:
                text = report.samples_markdown(table, family, p.samples_per_family, seed)
                (folder / f"{family}.md").write_text(text)
                run.log_text(text, f"samples/{family}.md")

        run.log_metrics({"counts": metrics["counts"], "surface_cue": surface,
                         "baselines": family_base, "perturbqa": perturb_base})
        run.log_artifact(REPORTS / "metrics.json")
        run.publish(summary)
        run.log_artifact(REPORTS / "baselines.json")
        for family in FAMILIES:
            run.log_table(table[table["family"] == family].head(p.samples_per_family), f"problems_{family}",
                          rows=p.samples_per_family)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        ax.bar(histogram["tokens"], histogram["count"], width=45)
        ax.set(xlabel="prompt tokens (regex)", ylabel="problems", title="Prompt lengths")
        fig.tight_layout()
        run.log_figure(fig, "problems_prompt_lengths.png")
        plt.close(fig)
        log.info("problems: %d rows, %s", len(table), metrics["counts"]["per_split"])


if __name__ == "__main__":
    run_stage(problems_flow)
