"""Schema-valid stand-ins for the textify outputs, built from the same shipped data.

The ``textify`` stage is built on its own branch; until it lands, the problems stage's tests (and
a manual run) use these: PBMC cells ranked by raw expression, 256-base windows of the pyhmmer and
pyrodigal test genomes, and the pyhmmer test proteins. ``python -m tests.textify_standins DIR``
writes them to ``DIR`` (default ``data/textify``).
"""
from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from Bio import SeqIO

from tasks.common import schemas
from tasks.problems.alignment import resolve
from tasks.common.storage import write_table

DNA_SOURCES = ["pyhmmer:tests/data/seqs/CP040672.1.genes_100.fna",
               "pyhmmer:tests/data/seqs/1390.SAMEA104415756.OFHT01000024.fna",
               "pyrodigal:tests/data/GCF_001457455.1_NCTC11397_genomic_100kb.fna.gz"]
PROTEIN_SOURCES = ["pyhmmer:tests/data/seqs/938293.PRJEB85.HG003687.faa",
                   "pyhmmer:tests/data/seqs/LuxC.faa", "pyhmmer:tests/data/seqs/PKSI.faa"]


def _fasta(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        yield from SeqIO.parse(fh, "fasta")


def cell_sentences(top_k: int = 200, max_cells: int | None = None) -> pd.DataFrame:
    import scanpy as sc

    adata = sc.datasets.pbmc68k_reduced()
    x = adata.raw.X.toarray() if hasattr(adata.raw.X, "toarray") else np.asarray(adata.raw.X)
    names = np.asarray(adata.raw.var_names)
    rows = []
    for i in range(x.shape[0] if max_cells is None else min(max_cells, x.shape[0])):
        nz = np.flatnonzero(x[i] > 0)
        order = nz[np.argsort(-x[i, nz], kind="stable")][:top_k]
        rows.append({"cell_id": adata.obs_names[i], "label": str(adata.obs["bulk_labels"].iloc[i]),
                     "n_genes": int(len(nz)), "total_counts": float(x[i].sum()),
                     "cell_sentence": "<cell>" + ", ".join(names[order]) + "</cell>"})
    return pd.DataFrame(rows)


def dna_windows(window: int = 256, per_record: int = 20) -> pd.DataFrame:
    rows = []
    for spec in DNA_SOURCES:
        path = resolve(spec)
        for record in _fasta(path):
            seq = "".join(b if b in "ACGT" else "N" for b in str(record.seq).upper())
            for start in range(0, len(seq) - 64 + 1, window)[:per_record]:
                w = seq[start:start + window]
                acgt = sum(w.count(b) for b in "ACGT")
                rows.append({"window_id": f"{path.name}:{record.id}:{start}-{start + len(w)}",
                             "record_id": record.id,
                             "source_file": path.name, "start": start, "end": start + len(w),
                             "gc": (w.count("G") + w.count("C")) / max(acgt, 1), "sequence": w,
                             "text": f"<dna>{w}</dna>"})
    return pd.DataFrame(rows).drop_duplicates("window_id")


def protein_sequences(max_length: int = 2000) -> pd.DataFrame:
    rows = []
    for spec in PROTEIN_SOURCES:
        path = resolve(spec)
        for record in _fasta(path):
            seq = str(record.seq).upper().rstrip("*")
            if 0 < len(seq) <= max_length and set(seq) <= schemas.PROTEIN_ALPHABET:
                rows.append({"protein_id": f"{path.name}:{record.id}", "record_id": record.id,
                             "source_file": path.name,
                             "description": record.description, "length": len(seq), "sequence": seq,
                             "text": f"<protein>{seq}</protein>"})
    return pd.DataFrame(rows).drop_duplicates("protein_id")


def write_standins(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_table(cell_sentences(), folder / "cells.parquet", schemas.CellSentences)
    write_table(dna_windows(), folder / "dna.parquet", schemas.DnaWindows)
    write_table(protein_sequences(), folder / "proteins.parquet", schemas.ProteinSequences)


if __name__ == "__main__":
    write_standins(Path(sys.argv[1] if len(sys.argv) > 1 else "data/textify"))
