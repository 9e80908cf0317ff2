"""Ranking kernels of the textify stage: QC, normalise and top-k genes per CSR row, then the
sentences, built as an Arrow string array with no Python object per cell.

>>> import scipy.sparse as sp
>>> x = sp.csr_matrix(np.array([[0, 5, 1, 5], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=np.float32))
>>> r = rank_cells(x, tie_rank=np.array([3, 2, 1, 0]), top_k=3)
>>> r.top.tolist(), r.n_top.tolist(), [STATUS_NAMES[s] for s in r.status]
([[3, 1, 2], [0, -1, -1], [-1, -1, -1]], [3, 1, 0], ['kept', 'kept', 'all_zero'])
>>> sentences(r.top[:2], r.n_top[:2], ["A", "B", "C", "D"]).to_pylist()
['<cell>D, B, C</cell>', '<cell>A</cell>']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import pyarrow as pa
import scipy.sparse as sp

# --- kernels ------------------------------------------------------------------------------------

KEPT, NON_FINITE, NEGATIVE, ALL_ZERO, FEW_GENES, FEW_COUNTS, MITO = range(7)
STATUS_NAMES = ("kept", "non_finite", "negative", "all_zero", "min_genes", "min_counts",
                "max_mito_fraction")


@numba.njit(inline="always")
def _select_largest(keys, m, k):
    # Quickselect in place: afterwards keys[m-k:m] hold the k largest of keys[:m]. Hoare
    # partitioning, which stays balanced on repeated keys: it picks the cutoff from a sample of
    # values, where counts repeat a lot.
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


# The ranking keys are distinct (a gene appears once per row), which lets their select partition
# without branches: the comparison moves an index instead of choosing a path, and a CPU
# mispredicts such a branch about half the time on keys in no particular order. Then the k
# selected are sorted by radix, with no comparisons at all. Against Hoare's quickselect and
# np.sort, the two took 40% of the time on a 2,000-gene row.

_SMALL = 16  # ranges this short are finished by insertion sort


@numba.njit(inline="always")
def _partition(keys, lo, hi):
    # Lomuto around the median of three (moved to keys[hi]); returns where the pivot lands, the
    # smaller keys before it and the larger after. Equal keys would all go one way: distinct only.
    mid = (lo + hi) >> 1
    a, b, c = keys[lo], keys[mid], keys[hi]
    pivot = max(min(a, b), min(max(a, b), c))
    at = lo if pivot == a else mid if pivot == b else hi
    keys[at], keys[hi] = keys[hi], pivot
    j = lo
    for i in range(lo, hi):
        v = keys[i]
        keys[i] = keys[j]
        keys[j] = v
        j += v < pivot
    keys[j], keys[hi] = pivot, keys[j]
    return j


@numba.njit(inline="always")
def _insertion_sort(keys, lo, hi):
    for i in range(lo + 1, hi + 1):
        v = keys[i]
        j = i - 1
        while j >= lo and keys[j] > v:
            keys[j + 1] = keys[j]
            j -= 1
        keys[j + 1] = v


@numba.njit(inline="always")
def _select_distinct(keys, m, k):
    # Quickselect of distinct keys: afterwards keys[m-k:m] hold the k largest of keys[:m].
    lo, hi, target = 0, m - 1, m - k
    while hi - lo > _SMALL:
        j = _partition(keys, lo, hi)
        if j == target:
            return
        if j < target:
            lo = j + 1
        else:
            hi = j - 1
    _insertion_sort(keys, lo, hi)


@numba.njit(inline="always")
def _radix_sort(keys, lo, n, buf, hist):
    # LSD radix sort of keys[lo:lo + n], ascending, a byte at a time, into keys or buf. The
    # histograms of all eight bytes are counted in one pass, and a byte that every key shares
    # (high bytes of the tie rank; of counts, the low bytes of the value) moves nothing and is
    # skipped: 200 keys sort in about 60% of a quicksort's time.
    hist[:] = 0
    for i in range(lo, lo + n):
        for b in range(8):
            hist[b, (keys[i] >> np.uint64(8 * b)) & np.uint64(0xFF)] += 1
    src, dst = keys[lo:lo + n], buf[:n]
    for b in range(8):
        shift = np.uint64(8 * b)
        if n == 0 or hist[b, (src[0] >> shift) & np.uint64(0xFF)] == n:
            continue
        start = 0
        for d in range(256):  # counts to the first place of each byte value
            start, hist[b, d] = start + hist[b, d], start
        for i in range(n):
            d = (src[i] >> shift) & np.uint64(0xFF)
            dst[hist[b, d]] = src[i]
            hist[b, d] += 1
        src, dst = dst, src
    return src  # keys[lo:lo + n] or buf[:n], whichever the last pass wrote


_FAST = {"reassoc", "contract"}  # lets LLVM vectorise sums; NaN/inf semantics stay exact


@numba.njit(inline="always")
def _bad(v):
    # NaN, inf or negative: a bad record. NaN fails both comparisons.
    return not (v >= 0 and v < np.inf)


@numba.njit(inline="always")
def _fractional(v):
    # Finite and not a whole number: not a count. Negative fractions count too (-0.5 reads as
    # "not a count", as numpy's check said before); NaN and inf are bad records, not this.
    return (v != np.floor(v)) & (abs(v) < np.inf)


@numba.njit(fastmath=_FAST, inline="always")
def _row_stats(data, indices, lo, hi, mito_weight):
    # Branch-free so that it vectorises; the rare bad row is located afterwards. The counts
    # check rides along: the row is read here anyway, so it costs no extra pass or temporaries.
    # The mitochondrial sum is a gather per value (slow, on AMD CPUs a third of this kernel's
    # time), so it is left out when no weights are given: the filter is off.
    n_bad, n_frac, expressed, counts, mito = 0, 0, 0, 0.0, 0.0
    if mito_weight.size:
        for p in range(lo, hi):
            v = data[p]
            n_bad += _bad(v)
            n_frac += _fractional(v)
            expressed += v > 0
            counts += v
            mito += v * mito_weight[indices[p]]
    else:
        for p in range(lo, hi):
            v = data[p]
            n_bad += _bad(v)
            n_frac += _fractional(v)
            expressed += v > 0
            counts += v
    first_bad = first_frac = -1
    if n_bad:
        for p in range(lo, hi):
            if _bad(data[p]):
                first_bad = p
                break
    if n_frac:
        for p in range(lo, hi):
            if _fractional(data[p]):
                first_frac = p
                break
    return first_bad, first_frac, expressed, counts, mito


@numba.njit(inline="always")
def _log1p_normalized(value, scale):
    # normalize_total then log1p of one value. log(1 + x) in float64 is exact to float32 above
    # 1e-4; below it the series x - x^2/2 is.
    x = value * scale
    return np.log(1.0 + x) if x > 1e-4 else x * (1.0 - 0.5 * x)


@numba.njit(inline="always")
def _top_of_row(bits, indices, lo, hi, expressed, tie_rank, k, scratch, out, out_bits):
    # Ranking key, one uint64 per expressed gene: the float32 value's bits (ordered like the
    # values, which are positive) above the inverted seeded tie rank, so "largest key first" is
    # "value descending, then tie rank ascending" and no comparator is needed.
    # Only genes at or above a cutoff get a key: the cutoff is a quantile of a strided sample
    # of the row, taken generously; if it lets fewer than k through, every gene is taken.
    # ``bits`` are the values' bits as int32: every positive value is >= 1 and zero, -0.0 and
    # the negatives are below, so one comparison with a cutoff >= 1 also keeps expressed genes only.
    keys, positions, sample, buf, hist = scratch
    tie_max = np.uint64(0xFFFFFFFF)
    cutoff = np.int32(1)
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
            # branch-free compaction: the position is always written, kept only if it passes
            positions[m] = p
            m += bits[p] >= cutoff
        if m >= min(k, expressed):
            break
        cutoff = np.int32(1)
    for q in range(m):  # keys for the few that passed, not for the whole row
        p = positions[q]
        keys[q] = (np.uint64(bits[p]) << np.uint64(32)) | (tie_max - np.uint64(tie_rank[indices[p]]))
    s = min(m, k)
    if m > k:
        _select_distinct(keys, m, k)
    best = _radix_sort(keys, m - s, s, buf, hist)
    for q in range(s):
        key = best[s - 1 - q]
        out[q] = tie_max - (key & tie_max)  # the tie rank; the caller maps it back
        out_bits[q] = np.uint32(key >> np.uint64(32))  # the value's float32 bits
    return s


@numba.njit(parallel=True, cache=True)
def _rank_rows(data, bits, indices, indptr, mito_weight, tie_rank, gene_of_tie, k,
               min_genes, min_counts, max_mito_fraction, target_sum, with_values, n_blocks):
    # Each cell is handled start to end while its row sits in cache: stats and QC, then top k.
    # Rows are split into a few blocks per thread so scratch is allocated per block.
    n = indptr.size - 1
    status = np.zeros(n, np.int8)
    n_genes = np.zeros(n, np.int64)
    total = np.zeros(n, np.float64)
    first_bad = np.full(n, -1, np.int64)  # position in data of the first NaN/inf/negative value
    first_frac = np.full(n, -1, np.int64)  # ... and of the first finite non-integer (not a count)
    top = np.full((n, k), -1, np.int32)
    n_top = np.zeros(n, np.int32)
    values = np.full((n if with_values else 0, k), np.nan, np.float32)
    n_blocks = max(1, min(n, n_blocks))
    for b in numba.prange(n_blocks):
        first, last = b * n // n_blocks, (b + 1) * n // n_blocks
        width = 0
        for i in range(first, last):
            width = max(width, indptr[i + 1] - indptr[i])
        scratch = (np.empty(width, np.uint64), np.empty(width, np.int64), np.empty(256, np.int32),
                   np.empty(k, np.uint64), np.empty((8, 256), np.int32))  # keys, positions, sample, sort
        ranks = np.empty(k, np.uint64)
        rank_bits = np.empty(k, np.uint32)
        for i in range(first, last):
            lo, hi = indptr[i], indptr[i + 1]
            bad, frac, expressed, counts, mito = _row_stats(data, indices, lo, hi, mito_weight)
            n_genes[i], first_bad[i], first_frac[i] = expressed, bad, frac
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
            # the order is the same, without ties that rounding the normalised values could add;
            # the normalised values are computed for the k genes that are output, not for all.
            s = _top_of_row(bits, indices, lo, hi, expressed, tie_rank, k, scratch, ranks, rank_bits)
            for q in range(s):
                top[i, q] = gene_of_tie[ranks[q]]
                if with_values:
                    values[i, q] = _log1p_normalized(rank_bits[q:q + 1].view(np.float32)[0],
                                                     target_sum / counts)
            n_top[i] = s
    return status, n_genes, total, first_bad, first_frac, top, n_top, values


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
    first_bad: np.ndarray  # position in the CSR data of the row's first NaN/inf/negative, or -1
    first_frac: np.ndarray  # ... of its first finite non-integer (for the counts check), or -1
    top: np.ndarray  # (cells, top_k) gene indices, -1 pads
    n_top: np.ndarray
    values: np.ndarray  # (cells, top_k) log1p(normalize_total) of those genes, NaN pads; or (0, k)


def rank_cells(x: sp.csr_matrix, tie_rank: np.ndarray, top_k: int, *, target_sum: float = 1e4,
               min_genes: int = 0, min_counts: float = 0.0, max_mito_fraction: float = 1.0,
               is_mito: np.ndarray | None = None, with_values: bool = False) -> RankedCells:
    """QC and rank the genes of every row of ``x``; with ``with_values`` also the
    log1p(normalize_total) expression of the top genes (scanpy's values, for those genes only).

    Values are held as float32 (the precision of nearly every .h5ad); ``x`` is not modified.
    """
    if x.data.dtype != np.float32:
        raise TypeError("rank_cells needs float32 values (ranking keys are their bit patterns)")
    # The fraction of a subset of the values never exceeds 1 (the subset's sum cannot round
    # above the whole's), so at 1.0 the filter passes every cell and the sum is not taken.
    mito_filter = is_mito is not None and max_mito_fraction < 1.0
    mito_weight = np.asarray(is_mito, np.float64) if mito_filter else np.zeros(0)
    tie_rank = np.asarray(tie_rank, np.int64)
    out = _rank_rows(x.data, x.data.view(np.int32), x.indices, x.indptr, mito_weight, tie_rank,
                     np.argsort(tie_rank), int(top_k), int(min_genes), float(min_counts),
                     float(max_mito_fraction), float(target_sum), bool(with_values),
                     8 * numba.get_num_threads())  # (a call inside the kernel would stop caching)
    return RankedCells(*out)


_WIDE = 16  # bytes of a name and its separator copied as one fixed-size move


@numba.njit(parallel=True, cache=True)
def _join_names(top, n_top, name_bytes, name_offsets, sep, head, tail):
    # Arrow's string layout built directly: a byte buffer and the offset where each row starts.
    n, n_names = n_top.size, name_offsets.size - 1
    # Each name with its separator, padded to _WIDE bytes: a usual name is then copied by one
    # fixed-size copy (compiled to wide moves) instead of a byte loop whose exit, at a different
    # length each name, the CPU mispredicts. Longer names take the byte loop.
    piece = np.empty(n_names, np.int64)
    pieces = np.zeros((n_names, _WIDE), np.uint8)
    for g in range(n_names):
        lo, hi = name_offsets[g], name_offsets[g + 1]
        piece[g] = hi - lo + sep.size
        if piece[g] <= _WIDE:
            _put(pieces[g], _put(pieces[g], 0, name_bytes, lo, hi), sep, 0, sep.size)
    lengths = np.zeros(n + 1, np.int64)
    for i in numba.prange(n):
        size = head.size + tail.size - sep.size * (n_top[i] > 0)
        for q in range(n_top[i]):
            size += piece[top[i, q]]
        lengths[i + 1] = size
    offsets = np.cumsum(lengths)
    out = np.empty(offsets[-1], np.uint8)
    for i in numba.prange(n):
        at, end = _put(out, offsets[i], head, 0, head.size), offsets[i + 1]
        last = n_top[i] - 1
        for q in range(last):
            g = top[i, q]
            # the move may write past the piece, into what the next pieces overwrite, but
            # never past the row: another thread writes the next row
            if piece[g] <= _WIDE and at + _WIDE <= end:
                _put_wide(out, at, pieces[g])
                at += piece[g]
            else:
                at = _put(out, at, name_bytes, name_offsets[g], name_offsets[g + 1])
                at = _put(out, at, sep, 0, sep.size)
        if last >= 0:
            at = _put(out, at, name_bytes, name_offsets[top[i, last]], name_offsets[top[i, last] + 1])
        _put(out, at, tail, 0, tail.size)
    return offsets, out


@numba.njit(inline="always")
def _put(out, at, src, lo, hi):
    # a byte loop: gene names are a few bytes, too short for a slice copy to pay off
    for b in range(lo, hi):
        out[at] = src[b]
        at += 1
    return at


@numba.njit(inline="always")
def _put_wide(out, at, src):
    # _WIDE bytes. Unsigned indices spare numba's check for negative ones, which kept LLVM from
    # merging the byte copies into vector moves (this copy took 40% less time)
    at = np.uint64(at)
    for b in range(_WIDE):
        out[at + np.uint64(b)] = src[b]


def _utf8(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8)


def sentences(top: np.ndarray, n_top: np.ndarray, gene_names: Any, separator: str = ", ") -> pa.Array:
    """``<cell>G1, G2, ...</cell>`` per row of an index matrix, as one Arrow string array.

    The bytes are assembled in parallel from the gene names' UTF-8 buffer: no Python string is
    made per cell. A chunk where no cell passed QC gives an empty array.

    >>> sentences(np.array([[1, 0]]), np.array([2]), ["A", "B"]).to_pylist()
    ['<cell>B, A</cell>']
    >>> len(sentences(np.empty((0, 2)), np.empty(0, np.int64), ["A", "B"]))
    0
    """
    if len(n_top) == 0:
        return pa.array([], pa.large_string())
    names = gene_names if isinstance(gene_names, pa.Array) else pa.array(list(gene_names), pa.large_string())
    names = names.cast(pa.large_string())
    validity, offsets, data = names.buffers()
    name_offsets = np.frombuffer(offsets, np.int64, len(names) + 1, names.offset * 8)
    name_bytes = np.frombuffer(data, np.uint8) if data is not None else np.empty(0, np.uint8)
    # the ranking's int32 indices as they are (a copy to int64 cost a tenth of this function)
    top = np.ascontiguousarray(top, np.int32 if np.asarray(top).dtype == np.int32 else np.int64)
    top = top.reshape(len(n_top), -1)
    row_offsets, out = _join_names(top, np.asarray(n_top, np.int64), name_bytes, name_offsets,
                                   _utf8(separator), _utf8("<cell>"), _utf8("</cell>"))
    return pa.LargeStringArray.from_buffers(len(n_top), pa.py_buffer(row_offsets), pa.py_buffer(out))
