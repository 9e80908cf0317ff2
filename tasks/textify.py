"""Cells as text: QC, normalise, rank genes and write the top-k gene names as ``<cell>...</cell>``.

The matrix is read in row chunks (a backed ``.h5ad`` never loads whole), every per-cell step runs
in numba kernels over CSR arrays, and sentences are assembled by Arrow from an index matrix, so no
Python object is made per cell on the hot path.

>>> import scipy.sparse as sp
>>> x = sp.csr_matrix(np.array([[0, 5, 1, 5], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
>>> r = rank_cells(x, tie_rank=np.array([3, 2, 1, 0]), top_k=3)
>>> r.top.tolist(), r.n_top.tolist(), [STATUS_NAMES[s] for s in r.status]
([[3, 1, 2], [0, -1, -1], [-1, -1, -1]], [3, 1, 0], ['kept', 'kept', 'all_zero'])
>>> sentences(r.top[:2], r.n_top[:2], ["A", "B", "C", "D"]).to_pylist()
['<cell>D, B, C</cell>', '<cell>A</cell>']
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from tasks.errors import InputError
from tasks.params import Cells
from tasks.schemas import CellSentences
from tasks.storage import atomic_path

# --- kernels ------------------------------------------------------------------------------------

KEPT, NON_FINITE, NEGATIVE, ALL_ZERO, FEW_GENES, FEW_COUNTS, MITO = range(7)
STATUS_NAMES = ("kept", "non_finite", "negative", "all_zero", "min_genes", "min_counts",
                "max_mito_fraction")


@numba.njit(inline="always")
def _select_largest(keys, m, k):
    # Quickselect in place: afterwards keys[m-k:m] hold the k largest of keys[:m]. Keys are
    # distinct (a gene appears once per row), so Hoare partitioning always makes progress.
    lo, hi, target = 0, m - 1, m - k
    while lo < hi:
        a, b, c = keys[lo], keys[(lo + hi) >> 1], keys[hi]
        pivot = max(min(a, b), min(max(a, b), c))
        i, j = lo, hi
        while i <= j:
            while keys[i] < pivot:
                i += 1
            while keys[j] > pivot:
                j -= 1
            if i <= j:
                keys[i], keys[j] = keys[j], keys[i]
                i += 1
                j -= 1
        if target <= j:
            hi = j
        elif target >= i:
            lo = i
        else:
            return


_FAST = {"reassoc", "contract"}  # lets LLVM vectorise sums; NaN/inf semantics stay exact


@numba.njit(fastmath=_FAST, inline="always")
def _row_stats(data, indices, lo, hi, mito_weight):
    # Branch-free so that it vectorises; the rare bad row is located afterwards.
    n_bad, expressed, counts, mito = 0, 0, 0.0, 0.0
    for p in range(lo, hi):
        v = data[p]
        n_bad += not (v >= 0 and v < np.inf)  # NaN fails both comparisons
        expressed += v > 0
        counts += v
        mito += v * mito_weight[indices[p]]
    first_bad = -1
    if n_bad:
        for p in range(lo, hi):
            if not (data[p] >= 0 and data[p] < np.inf):
                first_bad = p
                break
    return first_bad, expressed, counts, mito


@numba.njit(fastmath=_FAST, inline="always")
def _normalize_row(data, lo, hi, scale):
    # normalize_total then log1p, in place. Neither changes the order within a cell (ranking
    # does not need them); they are kept so the values are scanpy's if they are carried.
    # log(1 + x) in float64 is exact to float32 above 1e-4 and, unlike libm's log1p, vectorises;
    # below 1e-4 the series x - x^2/2 is exact.
    for p in range(lo, hi):
        x = data[p] * scale
        data[p] = np.log(1.0 + x) if x > 1e-4 else x * (1.0 - 0.5 * x)


@numba.njit(inline="always")
def _top_of_row(data, bits, indices, lo, hi, expressed, tie_rank, k, keys, sample, out):
    # Ranking key, one uint64 per expressed gene: the float32 value's bits (ordered like the
    # values, which are positive) above the inverted seeded tie rank, so "largest key first" is
    # "value descending, then tie rank ascending" and no comparator is needed.
    # Only genes at or above a cutoff get a key: the cutoff is a quantile of a strided sample
    # of the row, taken generously; if it lets fewer than k through, every gene is taken.
    tie_max = np.uint64(0xFFFFFFFF)
    cutoff = np.uint32(1)
    if expressed > 2 * k:
        ns, stride = 0, max(1, (hi - lo) // sample.size)
        for p in range(lo, hi, stride):
            if ns < sample.size:
                sample[ns] = bits[p]
                ns += 1
        want = min(ns, 8 + (3 * k * ns) // (2 * expressed))
        _select_largest(sample, ns, want)
        cutoff = max(cutoff, sample[ns - want:ns].min())
    for attempt in range(2):
        m = 0
        for p in range(lo, hi):
            # branch-free compaction: the key is always written, kept only if it passes
            keys[m] = (np.uint64(bits[p]) << np.uint64(32)) | (tie_max - np.uint64(tie_rank[indices[p]]))
            m += (data[p] > 0) & (bits[p] >= cutoff)
        if m >= min(k, expressed):
            break
        cutoff = np.uint32(1)
    s = min(m, k)
    if m > k:
        _select_largest(keys, m, k)
    best = np.sort(keys[m - s:m])
    for q in range(s):
        out[q] = tie_max - (best[s - 1 - q] & tie_max)  # the tie rank; the caller maps it back
    return s


@numba.njit(parallel=True, cache=True)
def _rank_rows(data, bits, indices, indptr, mito_weight, tie_rank, gene_of_tie, k,
               min_genes, min_counts, max_mito_fraction, target_sum, n_blocks):
    # Each cell is handled start to end while its row sits in cache: stats and QC, normalise in
    # place, top k. Rows are split into a few blocks per thread so scratch is allocated per block.
    n = indptr.size - 1
    status = np.zeros(n, np.int8)
    n_genes = np.zeros(n, np.int64)
    total = np.zeros(n, np.float64)
    first_bad = np.full(n, -1, np.int64)  # position in data of the first NaN/inf/negative value
    top = np.full((n, k), -1, np.int32)
    n_top = np.zeros(n, np.int32)
    n_blocks = max(1, min(n, n_blocks))
    for b in numba.prange(n_blocks):
        first, last = b * n // n_blocks, (b + 1) * n // n_blocks
        width = 0
        for i in range(first, last):
            width = max(width, indptr[i + 1] - indptr[i])
        keys = np.empty(width, np.uint64)
        sample = np.empty(256, np.uint32)
        ranks = np.empty(k, np.uint64)
        for i in range(first, last):
            lo, hi = indptr[i], indptr[i + 1]
            bad, expressed, counts, mito = _row_stats(data, indices, lo, hi, mito_weight)
            n_genes[i], first_bad[i] = expressed, bad
            total[i] = counts if bad < 0 else 0.0
            if bad >= 0:
                status[i] = NON_FINITE if not np.isfinite(data[bad]) else NEGATIVE
            elif expressed == 0:
                status[i] = ALL_ZERO
            elif expressed < min_genes:
                status[i] = FEW_GENES
            elif counts < min_counts:
                status[i] = FEW_COUNTS
            elif mito > max_mito_fraction * counts:
                status[i] = MITO
            if status[i] != KEPT:
                continue
            # Ranked on the raw values: normalize_total and log1p are monotone within a cell, so
            # the order is the same, without ties that rounding the normalised values could add.
            s = _top_of_row(data, bits, indices, lo, hi, expressed, tie_rank, k, keys, sample, ranks)
            _normalize_row(data, lo, hi, target_sum / counts)
            for q in range(s):
                top[i, q] = gene_of_tie[ranks[q]]
            n_top[i] = s
    return status, n_genes, total, first_bad, top, n_top


# --- pure functions on one chunk ----------------------------------------------------------------

def tie_ranks(n_genes: int, seed: int) -> np.ndarray:
    """Secondary sort key: among equal values the gene with the smaller rank comes first."""
    return np.random.default_rng(seed).permutation(n_genes).astype(np.int64)


@dataclass
class RankedCells:
    """Per row of a chunk: what happened to it (``STATUS_NAMES``), its stats and top genes."""

    status: np.ndarray
    n_genes: np.ndarray
    total: np.ndarray
    first_bad: np.ndarray
    top: np.ndarray  # (cells, top_k) gene indices, -1 pads
    n_top: np.ndarray


def rank_cells(x: sp.csr_matrix, tie_rank: np.ndarray, top_k: int, *, target_sum: float = 1e4,
               min_genes: int = 0, min_counts: float = 0.0, max_mito_fraction: float = 1.0,
               is_mito: np.ndarray | None = None) -> RankedCells:
    """QC, normalise (in place) and rank the genes of every row of ``x``.

    Values are held as float32 (the precision of nearly every .h5ad): ``x.data`` must be float32
    and is overwritten with log1p-normalised values for the rows that are kept.
    """
    if x.data.dtype != np.float32:
        raise TypeError("rank_cells needs float32 values (it normalises them in place)")
    mito_weight = np.zeros(x.shape[1]) if is_mito is None else np.asarray(is_mito, np.float64)
    tie_rank = np.asarray(tie_rank, np.int64)
    out = _rank_rows(x.data, x.data.view(np.uint32), x.indices, x.indptr, mito_weight, tie_rank,
                     np.argsort(tie_rank), int(top_k), int(min_genes), float(min_counts),
                     float(max_mito_fraction), float(target_sum),
                     8 * numba.get_num_threads())  # (a call inside the kernel would stop caching)
    return RankedCells(*out)


@numba.njit(parallel=True, cache=True)
def _join_names(top, n_top, name_bytes, name_offsets, sep, head, tail):
    # Arrow's string layout built directly: a byte buffer and the offset where each row starts.
    n = n_top.size
    lengths = np.zeros(n + 1, np.int64)
    for i in numba.prange(n):
        size = head.size + tail.size + sep.size * max(n_top[i] - 1, 0)
        for q in range(n_top[i]):
            size += name_offsets[top[i, q] + 1] - name_offsets[top[i, q]]
        lengths[i + 1] = size
    offsets = np.cumsum(lengths)
    out = np.empty(offsets[-1], np.uint8)
    for i in numba.prange(n):
        at = _put(out, offsets[i], head, 0, head.size)
        for q in range(n_top[i]):
            if q:
                at = _put(out, at, sep, 0, sep.size)
            at = _put(out, at, name_bytes, name_offsets[top[i, q]], name_offsets[top[i, q] + 1])
        _put(out, at, tail, 0, tail.size)
    return offsets, out


@numba.njit(inline="always")
def _put(out, at, src, lo, hi):
    # a byte loop: gene names are a few bytes, too short for a slice copy to pay off
    for b in range(lo, hi):
        out[at] = src[b]
        at += 1
    return at


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8)


def sentences(top: np.ndarray, n_top: np.ndarray, gene_names: Any, separator: str = ", ") -> pa.Array:
    """``<cell>G1, G2, ...</cell>`` per row of an index matrix, as one Arrow string array.

    The bytes are assembled in parallel from the gene names' UTF-8 buffer: no Python string is
    made per cell.
    """
    names = gene_names if isinstance(gene_names, pa.Array) else pa.array(list(gene_names), pa.large_string())
    names = names.cast(pa.large_string())
    validity, offsets, data = names.buffers()
    name_offsets = np.frombuffer(offsets, np.int64, len(names) + 1, names.offset * 8)
    name_bytes = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    top = np.ascontiguousarray(top, np.int64).reshape(len(n_top), -1)
    row_offsets, out = _join_names(top, np.asarray(n_top, np.int64), name_bytes, name_offsets,
                                   _utf8(separator), _utf8("<cell>"), _utf8("</cell>"))
    return pa.LargeStringArray.from_buffers(len(n_top), pa.py_buffer(row_offsets), pa.py_buffer(out))


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
                   is_mito=is_mito)
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
