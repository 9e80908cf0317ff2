"""Benchmark: cell sentences from omicsforge vs cell2sentence's ``generate_sentences``.

Both run on the same synthetic count matrix in one invocation (cell2sentence in its own
environment, ``--c2s-python``, because of its dependencies), each on one in-memory matrix;
cell2sentence on the first ``--c2s-cells`` cells, since it converts a few thousand cells/s, and
speeds are compared in cells/s. The gene orders are compared too: they must agree apart from ties
(same value at every rank). Then peak memory is measured, each in a fresh process, while a backed
``.h5ad`` of ``--mem-cells`` cells is turned into a parquet file: it should not grow with the
number of cells.

    python bench/textify.py            # 100k x 20k, ~2,000 genes per cell; memory 100k vs 1M cells
    python bench/textify.py --quick    # a smaller run, about a minute
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.common.params import Cells  # noqa: E402
from tasks.textify.cells import CellCounts, iter_cell_tables, write_cell_sentences  # noqa: E402
from tasks.textify.readers import cell_matrix, open_cells  # noqa: E402

C2S_SCRIPT = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
import anndata, numpy as np, scipy.sparse as sp
from cell2sentence.utils import generate_sentences, generate_vocabulary
x = sp.load_npz(sys.argv[1]).tocsr()
adata = anndata.AnnData(x)
adata.var_names = [f"G{j}" for j in range(x.shape[1])]
vocab = generate_vocabulary(adata)
started, cpu = time.perf_counter(), time.process_time()
sentences = generate_sentences(adata, vocab, delimiter=" ")
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
top = [[int(g[1:]) for g in s.split(" ")[:int(sys.argv[3])]] for s in sentences]
json.dump({"seconds": seconds, "cpu": cpu, "top": top}, open(sys.argv[2], "w"))
"""


@numba.njit(parallel=True, cache=True)
def _row_counts(n_cells, n_genes, p, seed):
    counts = np.zeros(n_cells, np.int64)
    for i in numba.prange(n_cells):
        np.random.seed(seed + i)
        pos = np.random.geometric(p) - 1
        while pos < n_genes:
            counts[i] += 1
            pos += np.random.geometric(p)
    return counts


@numba.njit(parallel=True, cache=True)
def _fill(indptr, n_genes, p, seed, indices, data):
    # The same per-row seed as _row_counts: each gene is expressed with probability p (gaps
    # between expressed genes are geometric), counts are geometric: many small, many ties.
    for i in numba.prange(indptr.size - 1):
        np.random.seed(seed + i)
        pos = np.random.geometric(p) - 1
        q = indptr[i]
        while pos < n_genes:
            indices[q] = pos
            q += 1
            pos += np.random.geometric(p)
        for r in range(indptr[i], indptr[i + 1]):
            data[r] = np.random.geometric(0.3)


def synthetic_counts(n_cells: int, n_genes: int, nnz: int, seed: int = 0) -> sp.csr_matrix:
    p = min(1.0, nnz / n_genes)
    indptr = np.zeros(n_cells + 1, np.int64)
    np.cumsum(_row_counts(n_cells, n_genes, p, seed), out=indptr[1:])
    indices = np.empty(indptr[-1], np.int32)
    data = np.empty(indptr[-1], np.float32)
    _fill(indptr, n_genes, p, seed, indices, data)
    return sp.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


def as_adata(x: sp.csr_matrix):
    import anndata
    import pandas as pd

    obs = pd.DataFrame(index=[f"cell{i}" for i in range(x.shape[0])])
    return anndata.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(x.shape[1])]))


def ours(x: sp.csr_matrix, top_k: int, chunk_size: int) -> tuple[float, float, list[str], dict]:
    """The stage's own path on an in-memory matrix: QC, normalise, rank, Arrow strings, parquet."""
    import pyarrow.parquet as pq

    cfg = Cells(source="bench", use_raw=False, top_k=top_k, chunk_size=chunk_size)
    cm = cell_matrix(as_adata(x), "bench", cfg)
    counts = CellCounts()
    first = None
    with tempfile.TemporaryDirectory() as tmp:
        started, cpu = time.perf_counter(), time.process_time()
        writer = None
        for table in iter_cell_tables(cm, cfg, seed=0, counts=counts):
            clock = time.perf_counter()
            writer = writer or pq.ParquetWriter(Path(tmp) / "cells.parquet", table.schema)
            writer.write_table(table)
            counts.seconds["write"] += time.perf_counter() - clock
            first = first or table.column("cell_sentence").to_pylist()
        writer.close()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return seconds, cpu, first, dict(counts.seconds)


def run_c2s(python: str, x: sp.csr_matrix, top_k: int, workdir: Path) -> dict:
    sp.save_npz(workdir / "c2s.npz", x, compressed=False)
    (workdir / "c2s_run.py").write_text(C2S_SCRIPT)
    subprocess.run([python, str(workdir / "c2s_run.py"), str(workdir / "c2s.npz"),
                    str(workdir / "c2s.json"), str(top_k)], check=True, stderr=subprocess.DEVNULL)
    return json.loads((workdir / "c2s.json").read_text())


def compare_orders(x: sp.csr_matrix, our_sentences: list[str], c2s_top: list[list[int]], top_k: int):
    """(identical, equal apart from ties, cells compared): ties = same value at every rank."""
    identical = tie_equal = 0
    for i, (text, theirs) in enumerate(zip(our_sentences, c2s_top)):
        mine = [int(g[1:]) for g in text[len("<cell>"):-len("</cell>")].split(", ")]
        row = x.getrow(i).toarray().ravel()
        n = min(top_k, int((row > 0).sum()))
        theirs = theirs[:n]
        identical += mine == theirs
        tie_equal += len(mine) == len(theirs) and np.array_equal(row[mine], row[theirs]) and \
            bool(np.all(np.diff(row[mine]) <= 0))
    return identical, tie_equal, len(c2s_top)


# --- memory: a backed file, each size in its own process ----------------------------------------

def write_backed(path: Path, n_cells: int, n_genes: int, nnz: int, block: int = 50000) -> None:
    """An .h5ad whose X is CSR, written block by block so the writer's memory stays small too."""
    import anndata
    import h5py
    import pandas as pd

    write_elem = getattr(anndata.io, "write_elem", None) or anndata.experimental.write_elem
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        # obs shaped like an atlas download's: ids, a categorical label, per-cell text and numbers
        ids = [f"cell{i}" for i in range(n_cells)]
        write_elem(f, "obs", pd.DataFrame({
            "cell_type": pd.Categorical.from_codes(np.arange(n_cells) % 30, [f"type{t}" for t in range(30)]),
            "barcode": [f"{i:016d}-1" for i in range(n_cells)], "n_counts": np.arange(n_cells, dtype=float)},
            index=ids))
        write_elem(f, "var", pd.DataFrame(index=[f"G{j}" for j in range(n_genes)]))
        g = f.create_group("X")
        g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0",
                        "shape": (n_cells, n_genes)})
        data = g.create_dataset("data", (0,), np.float32, maxshape=(None,), chunks=(1 << 20,))
        indices = g.create_dataset("indices", (0,), np.int32, maxshape=(None,), chunks=(1 << 20,))
        indptr = [0]
        for start in range(0, n_cells, block):
            x = synthetic_counts(min(block, n_cells - start), n_genes, nnz, seed=start)
            old = data.shape[0]
            data.resize((old + x.nnz,))
            indices.resize((old + x.nnz,))
            data[old:] = x.data
            indices[old:] = x.indices
            indptr.extend((x.indptr[1:] + old).tolist())
        g.create_dataset("indptr", data=np.asarray(indptr, np.int64))
        for key in ("layers", "obsm", "varm", "obsp", "varp", "uns"):
            write_elem(f, key, {})


def peak_rss_mb() -> float:
    # VmHWM is this process image's own peak; getrusage's ru_maxrss would also count the peak
    # of the parent that forked it (Linux keeps it across exec).
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(path: str, out: str) -> dict:
    """In a fresh process: textify a backed file to parquet; its peak resident memory."""
    before = peak_rss_mb()
    cfg = Cells(source=path, use_raw=False, label_key="cell_type", top_k=200, chunk_size=20000)
    started = time.perf_counter()
    with open_cells(path, cfg) as cm:
        counts = write_cell_sentences(cm, out, cfg, seed=0)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    return {"cells": counts.cells_out, "seconds": round(seconds, 1), "cells_per_s": round(counts.cells_out / seconds),
            "rss_after_imports_mb": round(before), "peak_rss_mb": round(peak),
            "phases": {k: round(v, 1) for k, v in counts.seconds.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cells", type=int, default=100_000, help="cells of the speed matrix")
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--nnz", type=int, default=2_000, help="expressed genes per cell (mean)")
    ap.add_argument("--top-k", type=int, default=200)
    ap.add_argument("--c2s-cells", type=int, default=5_000, help="cells given to cell2sentence")
    ap.add_argument("--c2s-python", default=".venv-c2s/bin/python",
                    help="a Python with cell2sentence installed ('' skips the comparison)")
    ap.add_argument("--mem-cells", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--mem-nnz", type=int, default=200, help="expressed genes per cell in the backed files")
    ap.add_argument("--quick", action="store_true", help="20k cells, c2s on 2k, memory on 20k vs 200k")
    ap.add_argument("--measure", nargs=2, metavar=("H5AD", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return
    if args.quick:
        args.cells, args.c2s_cells, args.mem_cells = 20_000, 2_000, [20_000, 200_000]

    print(f"machine: {os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f} at start (other work slows wall-clock rates)")
    ours(synthetic_counts(100, 500, 50), args.top_k, 1000)  # compile (or load the cache) first
    x = synthetic_counts(args.cells, args.genes, args.nnz)
    x.has_canonical_format  # computed once here, as a loaded file's matrix would have it
    print(f"matrix: {args.cells:,} cells x {args.genes:,} genes, {x.nnz / args.cells:,.0f} expressed genes "
          f"per cell, top-k {args.top_k}")
    seconds, cpu, first_chunk, phases = ours(x, args.top_k, chunk_size=20000)
    rate = args.cells / seconds
    print(f"omicsforge textify: {args.cells:,} cells in {seconds:.2f} s = {rate:,.0f} cells/s; "
          f"{args.cells / cpu:,.0f} cells per CPU-second "
          f"(QC + normalize_total/log1p + top-k + sentences + parquet, chunks of 20,000)")
    print("  phases: " + ", ".join(f"{k} {v:.2f} s ({v / seconds:.0%})" for k, v in
                                   sorted(phases.items(), key=lambda kv: -kv[1])))
    if args.c2s_python:
        with tempfile.TemporaryDirectory() as tmp:
            sub = x[:args.c2s_cells]
            c2s = run_c2s(args.c2s_python, sub, args.top_k, Path(tmp))
        c2s_rate = args.c2s_cells / c2s["seconds"]
        c2s_cpu_rate = args.c2s_cells / c2s["cpu"]
        print(f"cell2sentence generate_sentences: {args.c2s_cells:,} cells (a subset of the same matrix) "
              f"in {c2s['seconds']:.2f} s = {c2s_rate:,.0f} cells/s; {c2s_cpu_rate:,.0f} cells per "
              f"CPU-second (one thread; it writes every expressed gene, not the top {args.top_k})")
        print(f"speed-up: {rate / c2s_rate:.1f}x in cells/s (wall clock); "
              f"{args.cells / cpu / c2s_cpu_rate:.1f}x per CPU-second")
        n = min(len(first_chunk), args.c2s_cells)
        same, tie_same, total = compare_orders(sub, first_chunk[:n], c2s["top"][:n], args.top_k)
        print(f"gene order vs cell2sentence on {total:,} cells: identical {same:,}, "
              f"equal apart from ties {tie_same:,} of {total:,}")

    peaks = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        for n_cells in args.mem_cells:
            path = Path(tmp) / f"cells_{n_cells}.h5ad"
            started = time.perf_counter()
            write_backed(path, n_cells, args.genes, args.mem_nnz)
            size = path.stat().st_size / 2**20
            print(f"backed file: {n_cells:,} cells x {args.genes:,} genes, {args.mem_nnz} per cell, "
                  f"{size:,.0f} MiB, written in {time.perf_counter() - started:.0f} s")
            child = subprocess.run([sys.executable, __file__, "--measure", str(path), str(Path(tmp) / "out.parquet")],
                                   check=True, capture_output=True, text=True)
            result = json.loads(child.stdout.strip().splitlines()[-1])
            print(f"  -> parquet: {result['cells']:,} cells in {result['seconds']} s ({result['cells_per_s']:,} cells/s), "
                  f"peak RSS {result['peak_rss_mb']:,} MiB (after imports {result['rss_after_imports_mb']:,} MiB); "
                  f"phases (s): {result['phases']}")
            peaks[n_cells] = result["peak_rss_mb"]
            path.unlink()
    if len(peaks) > 1:
        (small, low), (large, high) = min(peaks.items()), max(peaks.items())
        print(f"peak memory at {large:,} cells / at {small:,} cells: {high / low:.2f}x "
              f"({large / small:.0f}x the cells; label column read, other obs columns not)")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
