"""Cells as text: QC, normalise, rank genes and write the top-k gene names as ``<cell>...</cell>``.

The matrix is read in row chunks (a backed ``.h5ad`` never loads whole), every per-cell step runs
in numba kernels over CSR arrays, and sentences are assembled by Arrow from an index matrix, so no
Python object is made per cell on the hot path.

The kernels live in :mod:`tasks.textify.ranking` and the readers (formats, layers, gene symbols)
in :mod:`tasks.textify.readers`; this module applies the params chunk by chunk and writes parquet.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
from tasks.textify.readers import CellMatrix, open_cells

# --- chunks to sentences ------------------------------------------------------------------------

@dataclass
class CellCounts:
    """What happened to the cells, for metrics."""

    cells_in: int = 0
    cells_out: int = 0
    dropped: Counter = field(default_factory=Counter)
    genes_per_sentence: list = field(default_factory=list)  # one small array per chunk
    text_chars: list = field(default_factory=list)  # sentence lengths, one array per chunk
    seconds: Counter = field(default_factory=Counter)  # wall time per phase: read, rank, strings, write


def check_counts(x: sp.csr_matrix, first_frac: np.ndarray, start: int, cm: CellMatrix,
                 cell_ids: pd.Index) -> None:
    """Stop at the first value that is not a whole number: normalize_total expects counts, and a
    normalised matrix would be normalised twice (its ``top_values`` and ``min_counts`` wrong).

    ``first_frac`` is the ranking kernel's per-row finding (position in ``x.data``, or -1), so the
    check makes no pass of its own; rows are in data order, so the first row found holds the
    chunk's first such value."""
    rows = np.flatnonzero(first_frac >= 0)
    if not rows.size:
        return
    i = int(rows[0])
    p = int(first_frac[i])
    others = [name for name in cm.layers if f"[{name!r}]" not in cm.where]
    raise InputError(cm.file, f"cell {cell_ids[i]!r} (row {start + i})",
                     f"value {x.data[p]:g} at gene {cm.gene_names[x.indices[p]]!r} in {cm.where} is not a "
                     f"count: the matrix looks normalised; name the counts with layer (--layer), "
                     f"layers: {others or 'none'}; or set expect_counts: false (--no-expect-counts) "
                     f"to rank these values as they are")


def textify_chunk(x: sp.csr_matrix, start: int, cm: CellMatrix, cfg: Cells, tie_rank: np.ndarray,
                  gene_names: pa.Array, is_mito: np.ndarray, counts: CellCounts) -> pa.Table:
    """Cell sentences of rows ``start:start + x.shape[0]``; bad cells raise or are counted."""
    clock = time.perf_counter()
    obs = cm.obs_rows(start, start + x.shape[0])
    counts.seconds["read"] += time.perf_counter() - clock
    clock = time.perf_counter()
    r = rank_cells(x, tie_rank, cfg.top_k, target_sum=cfg.target_sum, min_genes=cfg.min_genes,
                   min_counts=cfg.min_counts, max_mito_fraction=cfg.max_mito_fraction,
                   is_mito=is_mito, with_values=cfg.top_values)
    if cm.counts_expected:  # before bad records: a normalised matrix is the likelier mistake
        check_counts(x, r.first_frac, start, cm, obs.index)
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
            raise InputError(cm.file, f"cell {obs.index[i]!r} (row {start + i})", problem)
    # QC failures are the filter doing its job, and like bad records in drop mode, are counted.
    codes, n = np.unique(r.status, return_counts=True)
    counts.dropped.update({STATUS_NAMES[c]: int(k) for c, k in zip(codes, n) if c != KEPT})
    rows = np.flatnonzero(r.status == KEPT)
    # the (cells, top_k) matrices as views when every cell is kept, the usual case: no copy
    whole = slice(None) if rows.size == r.status.size else rows
    top, n_top = r.top[whole], r.n_top[rows]
    counts.cells_in += x.shape[0]
    counts.cells_out += rows.size
    counts.genes_per_sentence.append(n_top)
    counts.seconds["rank"] += time.perf_counter() - clock
    clock = time.perf_counter()
    text = sentences(top, n_top, gene_names, cfg.separator)
    counts.text_chars.append(_characters(text, gene_names, cfg.separator))

    columns = {
        "cell_id": pa.array(np.asarray(obs.index, dtype=object)[rows], pa.string()),
        "label": _obs_column(obs, cfg.label_key, rows, as_text=True),
        "n_genes": pa.array(r.n_genes[rows]),
        "total_counts": pa.array(r.total[rows]),
        "cell_sentence": text,
    }
    if cfg.top_values:
        values = r.values[whole]
        columns["top_values"] = pa.ListArray.from_arrays(
            pa.array(np.concatenate([[0], np.cumsum(n_top)]).astype(np.int32)),
            pa.array(values[np.arange(values.shape[1]) < n_top[:, None]], pa.float32()))
    for key in cfg.obs_keys:
        columns[f"obs_{key}"] = _obs_column(obs, key, rows, as_text=False)
    table = pa.table(columns)
    counts.seconds["strings"] += time.perf_counter() - clock
    return table


def _characters(text: pa.Array, gene_names: pa.Array, separator: str) -> np.ndarray:
    """Characters per sentence (a metric). With ASCII names and separator, the byte lengths in
    the string offsets: decoding every sentence cost a tenth of building them."""
    if not (separator.isascii() and pc.all(pc.string_is_ascii(gene_names)).as_py()):
        return pc.utf8_length(text).to_numpy()
    if not len(text):
        return np.zeros(0, np.int64)
    return np.diff(np.frombuffer(text.buffers()[1], np.int64, len(text) + 1, text.offset * 8))


def _obs_column(obs: pd.DataFrame, key: str | None, rows: np.ndarray, as_text: bool) -> pa.Array:
    # Categorical columns (the usual kind for labels) go through their codes, so no Python
    # string is made per cell; numbers stay numbers unless the column is the label.
    if key is None:
        return pa.nulls(rows.size, pa.string())
    col = obs[key].iloc[rows]
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
                     progress: bool = False, rows: tuple[int, int] | None = None) -> Iterator[pa.Table]:
    """Sentence tables chunk by chunk (of ``rows``, default all); memory is bounded by
    ``chunk_size``, not by the file."""
    from tqdm.auto import tqdm

    tie_rank = tie_ranks(len(cm.gene_names), seed)
    gene_names = pa.array(list(cm.gene_names), pa.large_string())
    is_mito = np.array([str(g).startswith(cfg.mito_prefix) for g in cm.gene_names], dtype=np.bool_)
    if not is_mito.any():  # a panel without mitochondrial genes cannot fail the mito filter
        cfg = cfg.model_copy(update={"max_mito_fraction": 1.0})
    lo, hi = rows or (0, cm.n_cells)
    # disable=None: a bar on a terminal only, so logs and one-line errors stay clean
    for start in tqdm(range(lo, hi, cfg.chunk_size), desc="cells", unit="chunk", disable=None if progress else True):
        clock = time.perf_counter()
        x = cm.rows(start, min(start + cfg.chunk_size, hi))
        counts.seconds["read"] += time.perf_counter() - clock
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


def write_tables(tables: Iterator[pa.Table], out: str | Path, file: str, counts: CellCounts,
                 whole: bool = True) -> None:
    """Validate and write sentence tables to one parquet file (a row group each), atomically; the
    whole file's sentences must hold at least one cell."""
    with atomic_path(out) as tmp:
        writer = None
        try:
            for table in tables:
                validate_chunk(table, str(out))
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                clock = time.perf_counter()
                writer.write_table(table.cast(writer.schema))
                counts.seconds["write"] += time.perf_counter() - clock
        finally:
            if writer is not None:
                writer.close()
        if whole and counts.cells_out == 0:
            raise InputError(file, "all cells", f"none passed QC ({dict(counts.dropped)})")


def write_cell_sentences(cm: CellMatrix, out: str | Path, cfg: Cells, seed: int,
                         progress: bool = False) -> CellCounts:
    """Write the sentences of every cell to parquet chunk by chunk, atomically."""
    counts = CellCounts()
    write_tables(iter_cell_tables(cm, cfg, seed, counts, progress), out, cm.file, counts)
    return counts


# --- the same, as parts written by many workers (textify.runner: dask) ---------------------------

def write_cell_part(cfg: Cells, seed: int, rows: tuple[int, int], out: str | Path) -> CellCounts:
    """Cells ``rows`` of ``cfg.source`` as one parquet part: what one worker does. It opens the
    file itself (on storage every worker sees); the whole-file checks ran once, in the flow."""
    counts = CellCounts()
    with open_cells(cfg.source, cfg, whole_file_checks=False) as cm:
        write_tables(iter_cell_tables(cm, cfg, seed, counts, rows=rows), out, cm.file, counts, whole=False)
    return counts


def merge_parts(parts: list[Path], part_counts: list[CellCounts], out: str | Path, file: str) -> CellCounts:
    """The parts, in row order, as one file: the same bytes as :func:`write_cell_sentences`."""
    counts = CellCounts()
    for c in part_counts:
        counts.cells_in += c.cells_in
        counts.cells_out += c.cells_out
        counts.dropped.update(c.dropped)
        counts.genes_per_sentence += c.genes_per_sentence
        counts.text_chars += c.text_chars
        counts.seconds.update(c.seconds)
    write_tables((pq.read_table(p) for p in parts), out, file, counts)
    return counts
