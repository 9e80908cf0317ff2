"""Opening single-cell matrices for textify: the formats users hold, the scverse conventions.

* ``.h5ad``: read backed through h5py: the matrix in row chunks, and of ``obs`` only the cell ids
  and the columns asked for, chunk by chunk, so memory does not grow with the number of cells.
* 10x Genomics ``.h5`` and ``matrix.mtx`` folders: scanpy's readers (in memory; 10x files hold
  counts); duplicate gene symbols are made unique as scanpy's tutorials do (``TBCE``, ``TBCE-1``).
* ``scanpy:<dataset>``: a dataset shipped with scanpy.

Which matrix: ``layer`` (``adata.layers[NAME]``; scverse keeps counts in ``layers["counts"]``),
else ``adata.raw.X`` (``use_raw``), else ``adata.X``. Which names: ``gene_symbols`` names the
``var`` column written into sentences (CELLxGENE keeps Ensembl ids as ``var_names`` and symbols
in ``feature_name``). A missing layer or column, a transposed matrix, duplicate genes or cells,
and Ensembl ids written where a column of symbols exists are refused in one line.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tasks.common.errors import InputError
from tasks.common.params import Cells

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


def mostly_gene_ids(names: Any, sample: int = 1000) -> bool:
    """Whether most of ``names`` are Ensembl gene ids.

    >>> mostly_gene_ids(["ENSG00000167286", "ENSG00000198851"]), mostly_gene_ids(["CD3E", "CD3D"])
    (True, False)
    """
    names = [str(n) for n in names[:sample]]
    return bool(names) and sum(bool(_GENE_ID.match(n)) for n in names) > len(names) / 2


@dataclass
class CellMatrix:
    """Cells as rows of a (possibly backed) matrix, the gene names written, and the carried obs."""

    file: str
    where: str  # "raw.X", "X" or "layers['counts']", for messages
    matrix: Any  # scipy CSR, a backed CSR dataset, or a dense array/dataset
    gene_names: np.ndarray
    n_cells: int
    obs_rows: Callable[[int, int], pd.DataFrame] = field(repr=False)  # cells start:stop, ids as index
    counts_expected: bool = True
    layers: list[str] = field(default_factory=list)  # what the file offers, for messages

    def rows(self, start: int, stop: int) -> sp.csr_matrix:
        if isinstance(self.matrix, (sp.csr_matrix, sp.csr_array)) and self.matrix.has_canonical_format:
            # in memory: a view of the rows, copying nothing when the values are float32 already
            # (the kernels only read them); other dtypes are converted, a copy of the chunk
            m = self.matrix
            lo, hi = m.indptr[start], m.indptr[stop]
            return _csr_view(m.data[lo:hi].astype(np.float32, copy=False), m.indices[lo:hi],
                             m.indptr[start:stop + 1] - lo, (stop - start, m.shape[1]))
        block = self.matrix[start:stop]
        block = block if sp.issparse(block) else sp.csr_matrix(np.asarray(block))
        block = sp.csr_matrix(block)
        # float32 (the precision of nearly every .h5ad) halves the chunk and lets the ranking key
        # hold value and tie rank in one integer; sum_duplicates writes into the block, so it must
        # not share the matrix's values.
        shared = sp.issparse(self.matrix) and np.may_share_memory(block.data, self.matrix.data)
        if block.data.dtype != np.float32 or shared:
            block.data = block.data.astype(np.float32)
        block.sum_duplicates()  # a gene stored twice in a row would rank twice
        return block


def _csr_view(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A CSR matrix over these arrays as they are (canonical rows of a canonical matrix).

    scipy's constructor copies an array that is a view of less than half of its base (its
    ``prune``), which is every chunk of an in-memory matrix but the first: values and indices
    copied for nothing. Arrays set on an empty matrix are kept."""
    x = sp.csr_matrix(shape, dtype=data.dtype)
    x.data, x.indices, x.indptr = data, indices, indptr
    x.has_canonical_format = True
    return x


def is_10x(source: str) -> bool:
    """Whether ``source`` names a 10x Genomics file (``.h5``) or ``matrix.mtx`` folder."""
    return Path(source).is_dir() or source.lower().endswith(".h5")


def _which_matrix(file: str, cfg: Cells, layers: list[str], has_raw: bool) -> str:
    """Where the ranked values come from (``layers['counts']``, ``raw.X`` or ``X``), or the
    refusal naming what the file holds."""
    if cfg.layer is not None:
        if cfg.layer not in layers:
            raise InputError(file, "layers", f"no layer {cfg.layer!r}; layers: {layers or 'none'}")
        return f"layers[{cfg.layer!r}]"
    if cfg.use_raw:
        if not has_raw:
            raise InputError(file, "raw", "missing: use_raw is set but the file has no raw (use --no-raw, "
                             f"or a layer: {layers or 'none'})")
        return "raw.X"
    return "X"


def _obs_keys(file: str, cfg: Cells, columns: Any) -> list[str]:
    """The obs columns carried (label first), each checked to exist."""
    keys = list(dict.fromkeys(([cfg.label_key] if cfg.label_key else []) + list(cfg.obs_keys)))
    for key in keys:
        if key not in columns:
            raise InputError(file, "obs", f"no column {key!r} (label_key/obs_keys)")
    return keys


def _check_names(file: str, where: str, genes: pd.Index, var_columns: list[str], cfg: Cells,
                 column_values: Callable[[str], Any]) -> np.ndarray:
    """The gene names written into sentences: var_names, or the ``gene_symbols`` column."""
    if cfg.gene_symbols is not None:
        if cfg.gene_symbols not in var_columns:
            raise InputError(file, f"{where} var", f"no column {cfg.gene_symbols!r} (gene_symbols); "
                             f"columns: {var_columns or 'none'}")
        names = pd.Index(np.asarray(column_values(cfg.gene_symbols)).astype(str))
        if len(missing := names[names.isin(["", "nan", "None"])]):
            raise InputError(file, f"{where} var", f"column {cfg.gene_symbols!r} is empty for "
                             f"{len(missing)} genes")
    else:
        names = genes
        if mostly_gene_ids(names) and (readable := [c for c in var_columns if _symbols(column_values(c))]):
            raise InputError(file, f"{where} var_names", f"Ensembl ids ({names[0]!r}, ...) would be "
                             f"written into the sentences; name the var column of gene symbols with "
                             f"gene_symbols (--gene-symbols): {readable}")
    dup = names[names.duplicated()]
    if len(dup):
        source = f"column {cfg.gene_symbols!r}" if cfg.gene_symbols else "var_names"
        raise InputError(file, f"gene {dup[0]!r}", f"duplicate gene name in {where} {source} "
                                                   f"({len(dup)} duplicates)")
    return np.asarray(names, dtype=object)


def _symbols(values: Any) -> bool:
    """Whether a var column looks like gene symbols: text, nearly one value per gene, not ids."""
    column = pd.Series(values)
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    text = column.astype(str)
    return text.nunique() > 0.9 * len(text) and not mostly_gene_ids(text.to_numpy())


def _counts_expected(cfg: Cells, source: str) -> bool:
    return cfg.expect_counts if cfg.expect_counts is not None else not source.startswith("scanpy:")


def cell_matrix(adata, file: str, cfg: Cells) -> CellMatrix:
    """Check an in-memory AnnData as a whole and view it as cells."""
    layers = list(getattr(adata, "layers", {}).keys())
    where = _which_matrix(file, cfg, layers, adata.raw is not None)
    raw = where == "raw.X"
    matrix = adata.layers[cfg.layer] if cfg.layer is not None else adata.raw.X if raw else adata.X
    var = adata.raw.var if raw else adata.var
    if matrix is None:
        raise InputError(file, where, "missing: the file has no expression matrix")
    if sp.issparse(matrix) and matrix.format != "csr":
        matrix = matrix.tocsr()
    reason = looks_transposed(adata.obs_names, var.index)
    if reason:
        raise InputError(file, where, f"{TRANSPOSE_HINT}: {reason}")
    genes = _check_names(file, where, var.index, [str(c) for c in var.columns], cfg, lambda c: var[c].to_numpy())
    dup_cells = adata.obs_names[adata.obs_names.duplicated()]
    if len(dup_cells):
        raise InputError(file, f"cell {dup_cells[0]!r}", "duplicate cell id in obs_names")
    obs = adata.obs[_obs_keys(file, cfg, adata.obs.columns)]
    return CellMatrix(file, where, matrix, genes, adata.n_obs, lambda start, stop: obs.iloc[start:stop],
                      _counts_expected(cfg, file), layers)


# --- .h5ad, backed: only what is asked for is read ----------------------------------------------

def _h5_column(elem) -> Callable[[int, int], Any]:
    """Rows start:stop of one obs/var element stored by anndata (categorical, strings, numbers,
    nullable); another encoding is read whole once."""
    import h5py

    kind = elem.attrs.get("encoding-type", "")
    if kind == "categorical":
        categories = elem["categories"].asstr()[:] if elem["categories"].dtype.kind == "O" else elem["categories"][:]
        codes = elem["codes"]
        return lambda start, stop: pd.Categorical.from_codes(codes[start:stop], categories)
    if kind == "string-array":
        return lambda start, stop: elem.asstr()[start:stop]
    if isinstance(elem, h5py.Dataset) and elem.dtype.kind in "biuf":
        return lambda start, stop: elem[start:stop]
    if kind in ("nullable-integer", "nullable-boolean"):
        values, mask = elem["values"], elem["mask"]
        array = pd.arrays.BooleanArray if kind == "nullable-boolean" else pd.arrays.IntegerArray
        return lambda start, stop: array(values[start:stop], mask[start:stop])
    import anndata

    whole = anndata.io.read_elem(elem)
    return lambda start, stop: np.asarray(whole)[start:stop]


def _h5_duplicate(ids: Callable[[int, int], Any], n: int, chunk: int) -> str | None:
    """The first repeated cell id, hashing the ids chunk by chunk (8 bytes a cell, not the ids)."""
    hashes = np.concatenate([pd.util.hash_array(np.asarray(ids(s, min(s + chunk, n)), dtype=object))
                             for s in range(0, n, chunk)] or [np.zeros(0, np.uint64)])
    order = np.argsort(hashes, kind="stable")
    repeat = np.flatnonzero(hashes[order][1:] == hashes[order][:-1])
    for r in repeat:  # a hash collision of two different ids is not a duplicate
        a, b = int(order[r]), int(order[r + 1])
        if ids(a, a + 1)[0] == ids(b, b + 1)[0]:
            return str(ids(b, b + 1)[0])
    return None


def h5ad_cells(f, file: str, cfg: Cells, whole_file_checks: bool = True) -> CellMatrix:
    """A CellMatrix over an open ``h5py.File`` of an ``.h5ad``; ``whole_file_checks`` false skips
    the pass over every cell id (for a worker given part of a file already checked)."""
    import anndata

    layers = list(f["layers"].keys()) if "layers" in f else []
    where = _which_matrix(file, cfg, layers, "raw" in f and "X" in f["raw"])
    raw = where == "raw.X"
    key = f"layers/{cfg.layer}" if cfg.layer is not None else "raw/X" if raw else "X"
    var = f["raw/var"] if raw else f["var"]
    if key not in f:
        raise InputError(file, where, "missing: the file has no expression matrix")
    elem = f[key]
    kind = elem.attrs.get("encoding-type", "array")
    if kind == "csc_matrix":
        raise InputError(file, where, "stored column-wise (CSC): row chunks would read it whole; "
                                      "rewrite it as CSR")
    matrix = anndata.io.sparse_dataset(elem) if kind == "csr_matrix" else elem
    obs = f["obs"]
    ids = _h5_column(obs[obs.attrs["_index"]])
    n_cells = int(matrix.shape[0])
    genes = pd.Index(np.asarray(_h5_column(var[var.attrs["_index"]])(0, None)).astype(str))
    reason = looks_transposed(ids(0, 1000), genes)
    if reason:
        raise InputError(file, where, f"{TRANSPOSE_HINT}: {reason}")
    var_columns = [c for c in var.attrs.get("column-order", [])]
    names = _check_names(file, where, genes, [str(c) for c in var_columns], cfg,
                         lambda c: _h5_column(var[c])(0, None))
    if whole_file_checks and (dup := _h5_duplicate(ids, n_cells, cfg.chunk_size)) is not None:
        raise InputError(file, f"cell {dup!r}", "duplicate cell id in obs_names")
    columns = [str(c) for c in obs.attrs.get("column-order", []) if c in obs]
    readers = {k: _h5_column(obs[k]) for k in _obs_keys(file, cfg, columns)}

    def obs_rows(start: int, stop: int) -> pd.DataFrame:
        return pd.DataFrame({k: read(start, stop) for k, read in readers.items()},
                            index=pd.Index(np.asarray(ids(start, stop), dtype=object)))

    return CellMatrix(file, where, matrix, names, n_cells, obs_rows, _counts_expected(cfg, file), layers)


# --- opening a source ---------------------------------------------------------------------------

def _read_memory(source: str):
    import anndata
    import scanpy as sc

    if source.startswith("scanpy:"):
        name = source.split(":", 1)[1]
        loader = getattr(sc.datasets, name, None)
        if not callable(loader):
            raise InputError(source, "source", f"scanpy.datasets has no dataset {name!r}")
        return loader()
    path = Path(source)
    try:
        if not is_10x(source):
            return anndata.read_h5ad(path)
        if path.is_dir():
            if not any((path / f).exists() for f in ("matrix.mtx", "matrix.mtx.gz")):
                raise InputError(path, "folder", "no matrix.mtx(.gz): not a 10x matrix folder")
            return sc.read_10x_mtx(path)
        adata = sc.read_10x_h5(path)
        adata.var_names_make_unique()
        return adata
    except InputError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as err:
        kind = "10x matrix folder" if path.is_dir() else path.suffix or "file"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, "file", f"not a readable {kind} ({first})") from None


@contextmanager
def open_cells(source: str, cfg: Cells, backed: bool = True,
               whole_file_checks: bool = True) -> Iterator[CellMatrix]:
    """Open ``source`` (see the module docstring) and check it as a whole; ``.h5ad`` is read
    backed unless ``backed`` is false."""
    if not source.startswith("scanpy:") and not Path(source).exists():
        raise InputError(source, "file", "not found")
    if backed and not source.startswith("scanpy:") and Path(source).suffix.lower() == ".h5ad":
        import h5py

        try:
            f = h5py.File(source, "r")
        except OSError as err:
            raise InputError(source, "file", f"not a readable .h5ad ({err})") from None
        try:
            if "X" not in f and "raw" not in f and "layers" not in f:
                raise InputError(source, "file", "not an .h5ad (no X, raw or layers)")
            yield h5ad_cells(f, source, cfg, whole_file_checks)
        finally:
            f.close()
        return
    yield cell_matrix(_read_memory(source), source, cfg)
