"""textify stage: cells, DNA and proteins written as text (``python -m flows.textify``).

Reads ``params.yaml`` (``textify`` and ``base``), writes ``data/textify/{cells,dna,proteins}.parquet``
(swapped in as one folder, so a failed run leaves the previous outputs), and
``reports/textify/metrics.json`` and ``lengths.csv`` for DVC; the MLflow run holds the same
metrics, table samples and a histogram of text lengths.

The cells run in this process (``textify.runner: local``) or, for files that outgrow one
machine, as one Prefect task per chunk on a Dask cluster (``runner: dask``, prefect-dask; the
source and ``data/`` on storage every worker sees), with the same output file.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from prefect import flow, task, unmapped
from prefect.cache_policies import NO_CACHE

from tasks.common.errors import run_stage
from tasks.common.params import Cells, Dna, Proteins, Textify, load_params
from tasks.common.schemas import DnaWindows, ProteinSequences
from tasks.textify.sequences import SeqCounts, dna_windows, protein_texts
from tasks.common.storage import atomic_path, write_csv, write_json, write_table
from tasks.textify.cells import (STATUS_NAMES, CellCounts, merge_parts, write_cell_part,
                                 write_cell_sentences)
from tasks.textify.readers import open_cells
from tasks.common.tracking import stage_run

OUT = Path("data/textify")
REPORTS = Path("reports/textify")
SEQ_REASONS = ("invalid_letter", "empty", "duplicate_id")


def _stats(values: np.ndarray) -> dict[str, float]:
    if values.size == 0:
        return {"min": 0, "mean": 0.0, "median": 0.0, "max": 0}
    return {"min": int(values.min()), "mean": round(float(values.mean()), 2),
            "median": float(np.median(values)), "max": int(values.max())}


def _cell_metrics(counts: CellCounts, seconds: float) -> tuple[dict, np.ndarray]:
    dropped = {name: counts.dropped.get(name, 0) for name in STATUS_NAMES[1:]}
    chars = np.concatenate(counts.text_chars)
    metrics = {"cells_in": counts.cells_in, "cells_out": counts.cells_out, "dropped": dropped,
               "genes_per_sentence": _stats(np.concatenate(counts.genes_per_sentence)),
               "text_chars": _stats(chars), "seconds": round(seconds, 3),
               "phase_seconds": {k: round(v, 3) for k, v in sorted(counts.seconds.items())},
               "cells_per_s": round(counts.cells_in / seconds, 1)}
    return metrics, chars


@task(cache_policy=NO_CACHE)
def textify_cells(cfg: Cells, seed: int, out: Path) -> tuple[dict, np.ndarray]:
    started = time.perf_counter()
    with open_cells(cfg.source, cfg) as cells:
        counts = write_cell_sentences(cells, out, cfg, seed, progress=True)
    return _cell_metrics(counts, time.perf_counter() - started)


@task(cache_policy=NO_CACHE)
def cell_part(cfg: Cells, seed: int, rows: tuple[int, int], out: Path) -> CellCounts:
    return write_cell_part(cfg, seed, rows, out)


@flow(name="textify-cells")
def textify_cells_distributed(cfg: Cells, seed: int, out: Path) -> tuple[dict, np.ndarray]:
    """The cells as one task per chunk on the flow's task runner (``textify.runner: dask``), the
    parts merged in row order: the same file as the in-process run."""
    started = time.perf_counter()
    with open_cells(cfg.source, cfg) as cells:  # the whole-file checks, once
        n = cells.n_cells
    bounds = [(start, min(start + cfg.chunk_size, n)) for start in range(0, n, cfg.chunk_size)]
    parts_dir = out.parent / f"{out.stem}.parts"
    parts_dir.mkdir()
    parts = [parts_dir / f"part-{i:06d}.parquet" for i in range(len(bounds))]
    futures = cell_part.map(unmapped(cfg), unmapped(seed), bounds, parts)
    counts = merge_parts(parts, [f.result() for f in futures], out, cfg.source)
    shutil.rmtree(parts_dir)
    return _cell_metrics(counts, time.perf_counter() - started)


def dask_runner(cfg: Textify):
    """prefect-dask's runner: on the cluster at ``dask_address``, or on a local one."""
    from prefect_dask import DaskTaskRunner

    if cfg.dask_address:
        return DaskTaskRunner(address=cfg.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.dask_workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})


def _seq_metrics(df: pd.DataFrame, counts: SeqCounts, rows_name: str) -> dict:
    dropped = {name: counts.dropped.get(name, 0) for name in SEQ_REASONS}
    dropped.update({k: v for k, v in counts.dropped.items() if k not in dropped})
    return {"files": counts.files, "records_in": counts.records_in,
            "records_out": counts.records_out, rows_name: len(df), "dropped": dropped,
            "text_chars": _stats(df["text"].str.len().to_numpy())}


@task(cache_policy=NO_CACHE)
def textify_dna(cfg: Dna, out: Path) -> tuple[dict, pd.DataFrame]:
    df, counts = dna_windows(cfg.sources, cfg)
    df = write_table(df, out, DnaWindows)
    metrics = _seq_metrics(df, counts, "windows")
    metrics["gc_mean"] = round(float(df["gc"].mean()), 4) if len(df) else 0.0
    return metrics, df


@task(cache_policy=NO_CACHE)
def textify_proteins(cfg: Proteins, out: Path) -> tuple[dict, pd.DataFrame]:
    df, counts = protein_texts(cfg.sources, cfg)
    return _seq_metrics(write_table(df, out, ProteinSequences), counts, "proteins"), df


def length_histogram(lengths: dict[str, np.ndarray], bins: int = 30) -> pd.DataFrame:
    """Rows (modality, length, count): text length in characters, ``length`` = bin start.

    >>> length_histogram({"dna": np.array([10, 10, 20])}, bins=2).values.tolist()
    [['dna', 10, 2], ['dna', 15, 1]]
    """
    rows = []
    for modality, values in lengths.items():
        if values.size:
            count, edges = np.histogram(values, bins=bins)
            rows += [(modality, int(e), int(c)) for e, c in zip(edges[:-1], count)]
    return pd.DataFrame(rows, columns=["modality", "length", "count"])


def _figure(lengths: dict[str, np.ndarray]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(lengths), figsize=(4 * len(lengths), 3))
    for ax, (modality, values) in zip(np.atleast_1d(axes), lengths.items()):
        ax.hist(values, bins=30)
        ax.set(title=modality, xlabel="text length (characters)", ylabel="count")
    fig.tight_layout()
    return fig


@flow(name="textify")
def textify() -> dict:
    params = load_params(require=("textify",))
    cfg = params.textify
    with stage_run("textify", params) as run:
        with atomic_path(OUT) as out:
            out.mkdir()
            if cfg.runner == "dask":
                cells_flow = textify_cells_distributed.with_options(task_runner=dask_runner(cfg))
                cells, cell_chars = cells_flow(cfg.cells, params.base.seed, out / "cells.parquet")
            else:
                cells, cell_chars = textify_cells(cfg.cells, params.base.seed, out / "cells.parquet")
            dna, dna_df = textify_dna(cfg.dna, out / "dna.parquet")
            proteins, protein_df = textify_proteins(cfg.proteins, out / "proteins.parquet")
            cell_sample = pq.ParquetFile(out / "cells.parquet").read_row_group(0).slice(0, 10).to_pandas()
        metrics = {"cells": cells, "dna": dna, "proteins": proteins}
        lengths = {"cells": cell_chars, "dna": dna_df["text"].str.len().to_numpy(),
                   "proteins": protein_df["text"].str.len().to_numpy()}
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"rows": cells["cells_out"] + dna["windows"] + proteins["proteins"]}
        write_json(summary, REPORTS / "summary.json")
        write_csv(length_histogram(lengths), REPORTS / "lengths.csv")
        run.log_metrics(metrics)
        run.publish(summary)
        run.log_table(cell_sample, "cells")
        run.log_table(dna_df, "dna")
        run.log_table(protein_df, "proteins")
        run.log_figure(_figure(lengths), "lengths.png")
        run.log_artifact(REPORTS / "lengths.csv", "reports")
    return metrics

if __name__ == "__main__":
    run_stage(textify)
