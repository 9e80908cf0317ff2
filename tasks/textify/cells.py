"""Cells as text: QC, normalise, rank genes and write the top-k gene names as ``<cell>...</cell>``.

The matrix is read in row chunks (a backed ``.h5ad`` never loads whole), every per-cell step runs
in numba kernels over CSR arrays, and sentences are assembled by Arrow from an index matrix, so no
Python object is made per cell on the hot path.

The kernels live in :mod:`tasks.textify.ranking`; this module reads AnnData, applies the params and
writes parquet.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from tasks.textify.ranking import (ALL_ZERO, KEPT, NEGATIVE, NON_FINITE, STATUS_NAMES,
                                rank_cells, sentences, tie_ranks)
from tasks.common.errors import InputError
from tasks.common.params import Cells
from tasks.common.schemas import CellSentences
from tasks.common.storage import atomic_path

TRANSPOSE_HINT = "looks transposed (cells as variables); store cells as rows (adata = adata.T)"
_BARCODE = re.compile(r"[ACGT]{10,}")
_GENE_ID = re.compile(r"^ENS[A-Z]*G\d{6,}")
_HOUSEKEEPING = frozenset({"ACTB", "GAPDH", "B2M", "MALAT1", "RPL13A", "TMSB4X", "EEF1A1", "FTL"})


def looks_transposed(obs_names: Any, var_names: Any, sample: int = 1000) -> str | None:
    """Why a matrix seems to hold genes as rows, or None.

    Heuristic (a file with cells as columns is the common mistake): most variable names look like
    cell barcodes (a run of 10+ A/C/G/T), or most observation names are Ensembl gene ids, or
    several ubiquitous genes (ACTB, GAPDH, B2M, ...) are observations while none is a variable.

    >>> looks_transposed(["CD3E", "ACTB", "GAPDH"], ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1"])
    'variable names look like cell barcodes (2 of 2)'
    >>> looks_transposed(["AAACCTGAGAAACCAT-1"], ["CD3E", "ACTB"]) is None
    True
    """
    obs, var = [str(s) for s in obs_names[:sample]], [str(s) for s in var_names[:sample]]
    barcodes = sum(bool(_BARCODE.search(v)) for v in var)
    if var and barcodes > len(var) / 2:
        return f"variable names look like cell barcodes ({barcodes} of {len(var)})"
    gene_ids = sum(bool(_GENE_ID.match(o)) for o in obs)
    if obs and gene_ids > len(obs) / 2:
        return f"observation names look like Ensembl gene ids ({gene_ids} of {len(obs)})"
    if len(_HOUSEKEEPING.intersection(obs)) >= 2 and not _HOUSEKEEPING.intersection(var):
        return f"observation names include genes {sorted(_HOUSEKEEPING.intersection(obs))[:3]}"
    return None


# --- reading an AnnData in chunks ---------------------------------------------------------------

@dataclass
class CellMatrix:
    """Cells as rows of a (possibly backed) matrix, plus the obs metadata that is carried."""

    file: str
    where: str  # "raw.X" or "X", for messages
    matrix: Any  # scipy CSR, a backed CSR dataset, or a dense array/dataset
    obs_names: pd.Index
    gene_names: np.ndarray
    obs: pd.DataFrame = field(repr=False)

    @property
    def n_cells(self) -> int:
        return len(self.obs_names)

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        if isinstance(self.matrix, (sp.csr_matrix, sp.csr_array)) and self.matrix.has_canonical_format:
            # in memory: copy only the values (normalised in place), share indices with the matrix
            m = self.matrix
            lo, hi = m.indptr[start], m.indptr[stop]
            return sp.csr_matrix((m.data[lo:hi].astype(np.float32, copy=True), m.indices[lo:hi],
                                  m.indptr[start:stop + 1] - lo), shape=(stop - start, m.shape[1]))
        block = self.matrix[start:stop]
        block = block if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
        block = sp.csr_matrix(block)
        # float32 (the precision of nearly every .h5ad) halves the chunk and lets the ranking key
        # hold value and tie rank in one integer; normalisation writes into this copy.
        shared = sp.issparse(self.matrix) and np.may_share_memory(block.data, self.matrix.data)
        if block.data.dtype != np.float32 or shared:
            block.data = block.data.astype(np.float32)
        block.sum_duplicates()  # a gene stored twice in a row would rank twice
        return block


def _load(source: str, backed: bool):
    import anndata

    if source.startswith("scanpy:"):
        import scanpy as sc

        name = source.split(":", 1)[1]
        loader = getattr(sc.datasets, name, None)
        if not callable(loader):
            raise InputError(source, "source", f"scanpy.datasets has no dataset {name!r}")
        return loader()
    path = Path(source)
    if not path.exists():
        raise InputError(path, "file", "not found")
    try:
        return anndata.read_h5ad(path, backed="r" if backed else None)
    except (OSError, KeyError, ValueError) as err:
        raise InputError(path, "file", f"not a readable .h5ad ({err})") from None


@contextmanager
def open_cells(source: str, cfg: Cells, backed: bool = True) -> Iterator[CellMatrix]:
    """Open ``source`` (``.h5ad`` read backed, or ``scanpy:<dataset>``) and check it as a whole."""
    adata = _load(source, backed)
    try:
        yield cell_matrix(adata, source, cfg)
    finally:
        if getattr(adata, "isbacked", False):
            adata.file.close()


def cell_matrix(adata, file: str, cfg: Cells) -> CellMatrix:
    """Check an AnnData as a whole (raw, genes, orientation, obs keys) and view it as cells."""
    if cfg.use_raw and adata.raw is None:
        raise InputError(file, "raw", "missing: use_raw is set but the file has no raw (use --no-raw)")
    where = "raw.X" if cfg.use_raw else "X"
    matrix = adata.raw.X if cfg.use_raw else adata.X
    genes = adata.raw.var_names if cfg.use_raw else adata.var_names
    if matrix is None:
        raise InputError(file, where, "missing: the file has no expression matrix")
    if getattr(matrix, "format", None) == "csc" and getattr(adata, "isbacked", False):
        raise InputError(file, where, "stored column-wise (CSC): row chunks would read it whole; "
                                      "rewrite it as CSR")
    if sp.issparse(matrix) and matrix.format != "csr":
        matrix = matrix.tocsr()
    reason = looks_transposed(adata.obs_names, genes)
    if reason:
        raise InputError(file, where, f"{TRANSPOSE_HINT}: {reason}")
    dup = genes[genes.duplicated()]
    if len(dup):
        raise InputError(file, f"gene {dup[0]!r}", f"duplicate gene name in {where} var_names "
                                                   f"({len(dup)} duplicates)")
    dup_cells = adata.obs_names[adata.obs_names.duplicated()]
    if len(dup_cells):
        raise InputError(file, f"cell {dup_cells[0]!r}", "duplicate cell id in obs_names")
    for key in dict.fromkeys(([cfg.label_key] if cfg.label_key else []) + list(cfg.obs_keys)):
        if key not in adata.obs.columns:
            raise InputError(file, "obs", f"no column {key!r} (label_key/obs_keys)")
    return CellMatrix(file, where, matrix, adata.obs_names, np.asarray(genes, dtype=object), adata.obs)


# --- chunks to sentences ------------------------------------------------------------------------

@dataclass
class CellCounts:
    """What happened to the cells, for metrics."""

    cells_in: int = 0
    cells_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    genes_per_sentence: list = field(default_factory=list)  # one small array per chunk
    text_chars: list = field(default_factory=list)  # sentence lengths, one array per chunk


def textify_chunk(x: sp.csr_matrix, start: int, cm: CellMatrix, cfg: Cells, tie_rank: np.ndarray,
                  gene_names: pa.Array, is_mito: np.ndarray, counts: CellCounts) -> pa.Table:
    """Cell sentences of rows ``start:start + x.shape[0]``; bad cells raise or are counted."""
    r = rank_cells(x, tie_rank, cfg.top_k, target_sum=cfg.target_sum, min_genes=cfg.min_genes,
                   min_counts=cfg.min_counts, max_mito_fraction=cfg.max_mito_fraction,
                   is_mito=is_mito, with_values=cfg.top_values)
    for code in (NON_FINITE, NEGATIVE, ALL_ZERO):  # bad records: fail, or drop with a count
        bad = np.flatnonzero(r.status == code)
        if bad.size and cfg.on_bad_record == "error":
            i = int(bad[0])
            if code == ALL_ZERO:
                problem = f"all-zero cell (no expressed gene in {cm.where})"
            else:
                p = r.first_bad[i]
                kind = "non-finite" if code == NON_FINITE else "negative"
                problem = f"{kind} value {x.data[p]} in {cm.where} at gene {cm.gene_names[x.indices[p]]!r}"
            raise InputError(cm.file, f"cell {cm.obs_names[start + i]!r} (row {start + i})", problem)
    # QC failures are the filter doing its job, and like bad records in drop mode, are counted.
    codes, n = np.unique(r.status, return_counts=True)
    counts.dropped.update({STATUS_NAMES[c]: int(k) for c, k in zip(codes, n) if c != KEPT})
    rows = np.flatnonzero(r.status == KEPT)
    top, n_top = r.top[rows], r.n_top[rows]
    counts.cells_in += x.shape[0]
    counts.cells_out += rows.size
    counts.genes_per_sentence.append(n_top)
    text = sentences(top, n_top, gene_names, cfg.separator)
    counts.text_chars.append(pc.utf8_length(text).to_numpy())

    columns = {
        "cell_id": pa.array(cm.obs_names[start:start + x.shape[0]].to_numpy()[rows], pa.string()),
        "label": _obs_column(cm.obs, cfg.label_key, start, x.shape[0], rows, as_text=True),
        "n_genes": pa.array(r.n_genes[rows]),
        "total_counts": pa.array(r.total[rows]),
        "cell_sentence": text,
    }
    if cfg.top_values:
        values = r.values[rows]
        columns["top_values"] = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(n_top)]).astype(np.int32)),
            pa.array(values[np.arange(values.shape[1]) < n_top[:, None]], pa.float32()))
    for key in cfg.obs_keys:
        columns[f"obs_{key}"] = _obs_column(cm.obs, key, start, x.shape[0], rows, as_text=False)
    return pa.table(columns)


def _obs_column(obs: pd.DataFrame, key: str | None, start: int, n: int, rows: np.ndarray,
                as_text: bool) -> pa.Array:
    # Categorical columns (the usual kind for labels) go through their codes, so no Python
    # string is made per cell; numbers stay numbers unless the column is the label.
    if key is None:
        return pa.nulls(rows.size, pa.string())
    col = obs[key].iloc[start:start + n].iloc[rows]
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        categories = pa.array(col.cat.categories.astype(str).to_numpy(), pa.string())
        return categories.take(pa.array(codes, mask=codes < 0))
    if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
        arr = pa.array(col.to_numpy(), mask=col.isna().to_numpy())
        return arr.cast(pa.string()) if as_text else arr
    try:
        return pa.array(col.to_numpy(dtype=object), pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types: their text
        return pa.array(col.astype(str).to_numpy(dtype=object), pa.string())


def iter_cell_tables(cm: CellMatrix, cfg: Cells, seed: int, counts: CellCounts,
                     progress: bool = False) -> Iterator[pa.Table]:
    """Sentence tables chunk by chunk; memory is bounded by ``chunk_size``, not by the file."""
    from tqdm.auto import tqdm

    tie_rank = tie_ranks(len(cm.gene_names), seed)
    gene_names = pa.array(list(cm.gene_names), pa.large_string())
    is_mito = np.array([str(g).startswith(cfg.mito_prefix) for g in cm.gene_names], dtype=np.bool_)
    if not is_mito.any():  # a panel without mitochondrial genes cannot fail the mito filter
        cfg = cfg.model_copy(update={"max_mito_fraction": 1.0})
    starts = range(0, cm.n_cells, cfg.chunk_size)
    # disable=None: a bar on a terminal only, so logs and one-line errors stay clean
    for start in tqdm(starts, desc="cells", unit="chunk", disable=None if progress else True):
        x = cm.rows(start, min(start + cfg.chunk_size, cm.n_cells))
        yield textify_chunk(x, start, cm, cfg, tie_rank, gene_names, is_mito, counts)


def validate_chunk(table: pa.Table, file: str) -> None:
    """CellSentences on the chunk's metadata; the sentence column's tags are checked in Arrow."""
    text = table.column("cell_sentence")
    ok = pc.and_(pc.starts_with(text, "<cell>"), pc.ends_with(text, "</cell>"))
    if not pc.all(ok).as_py() and len(text):
        raise InputError(file, "cell_sentence", "a sentence lacks its <cell> tags")
    meta = table.drop_columns(["cell_sentence"]).to_pandas()
    meta["cell_sentence"] = "<cell></cell>"  # stands in for the column checked above
    CellSentences.validate(meta)


def write_cell_sentences(cm: CellMatrix, out: str | Path, cfg: Cells, seed: int,
                         progress: bool = False) -> CellCounts:
    """Write the sentences of every cell to parquet chunk by chunk, atomically."""
    counts = CellCounts()
    with atomic_path(out) as tmp:
        writer = None
        try:
            for table in iter_cell_tables(cm, cfg, seed, counts, progress):
                validate_chunk(table, str(out))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table.cast(writer.schema))
        finally:
            if writer is not None:
                writer.close()
        if counts.cells_out == 0:
            raise InputError(cm.file, "all cells", f"none passed QC ({dict(counts.dropped)})")
    return counts
