"""``omicsforge``: ad-hoc commands on a user's own files, reusing the stages' tasks.

Pipeline runs go through ``dvc repro``; these commands are for one-off use (textify my h5ad,
evaluate this BEIR folder) and write nothing to MLflow.
"""
from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Optional

import typer

from tasks.common.params import Cells, Dna, Proteins

# click's plain help, as wide as the terminal: rich's panels cut long option names at 80 columns
# when the output is not a terminal, and label on/off flags as taking a <bool>
HELP = {"rich_markup_mode": None, "no_args_is_help": True,
        "context_settings": {"max_content_width": 240, "help_option_names": ["-h", "--help"]}}

app = typer.Typer(help="omicsforge: omics as text for language models.", add_completion=False, **HELP)

# --- textify: cells / dna / proteins ------------------------------------------------------------
textify_app = typer.Typer(help="Write omics data as text (<cell>, <dna>, <protein>) to parquet.", **HELP)
app.add_typer(textify_app, name="textify")


def _bad_input(err: Exception) -> typer.Exit:
    # One line on stderr and exit 2, as for the pipeline's stages: which file, record, problem.
    from pydantic import ValidationError

    if isinstance(err, ValidationError):
        first = err.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        err = f"--{str(first['loc'][0]).replace('_', '-')}: {msg}" if first["loc"] else msg
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(2)


def _nonzero(dropped) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(dropped.items()) if v) or "none"


def _default(model, name: str):
    return model.model_fields[name].default


@textify_app.command("cells")
def textify_cells(
    source: str = typer.Argument(..., help="AnnData .h5ad (read backed, in chunks), 10x .h5 or matrix.mtx "
                                 "folder, or scanpy:<dataset>."),
    out: Path = typer.Argument(..., help="Parquet file to write (replaced only when all is done)."),
    top_k: int = typer.Option(_default(Cells, "top_k"), help="Genes per sentence, highest normalised expression first."),
    separator: str = typer.Option(_default(Cells, "separator"), help="Text between gene names."),
    raw: Optional[bool] = typer.Option(None, "--raw/--no-raw", help="Rank genes from adata.raw (the "
                                       "default for .h5ad without --layer) or adata.X (the default "
                                       "for 10x files, which have no raw)."),
    layer: Optional[str] = typer.Option(None, help="Rank genes from adata.layers[LAYER] (scverse keeps "
                                        "counts in layers['counts'])."),
    gene_symbols: Optional[str] = typer.Option(None, help="var column with the gene names to write "
                                               "(CELLxGENE: feature_name); default var_names."),
    expect_counts: Optional[bool] = typer.Option(None, "--expect-counts/--no-expect-counts", help="Stop at "
                                                 "a value that is not a count (default for files) or "
                                                 "rank the values as they are."),
    label_key: Optional[str] = typer.Option(None, help="obs column written as each cell's label."),
    obs_key: list[str] = typer.Option([], metavar="COLUMN", help="obs column carried as obs_<key> (repeatable)."),
    chunk_size: int = typer.Option(_default(Cells, "chunk_size"), help="Cells read and processed at a time (bounds memory)."),
    min_genes: int = typer.Option(_default(Cells, "min_genes"), help="QC: drop cells with fewer expressed genes."),
    min_counts: float = typer.Option(_default(Cells, "min_counts"), help="QC: drop cells with a smaller total."),
    max_mito_fraction: float = typer.Option(_default(Cells, "max_mito_fraction"), help="QC: drop cells with a larger MT- fraction."),
    target_sum: float = typer.Option(_default(Cells, "target_sum"), help="normalize_total target before log1p."),
    top_values: bool = typer.Option(False, "--top-values", help="Also write the log1p-normalised "
                                    "expression of the sentence's genes (column top_values)."),
    seed: int = typer.Option(0, help="Seed of the tie-break order among equally expressed genes."),
    drop_bad: bool = typer.Option(False, "--drop-bad", help="Drop cells with NaN/inf/negative values "
                                  "or no expressed gene (counted) instead of failing."),
) -> None:
    """Cells to cell sentences: QC, rank genes, top-k gene names in <cell>...</cell>.

    Bad input (NaN or negative values, values that are not counts, duplicate genes, a transposed
    matrix, no raw, a missing layer or column, Ensembl ids where a column of symbols exists) stops
    with one line naming the file, the cell and the problem, and exit code 2; OUT is kept.
    """
    from tasks.textify.cells import write_cell_sentences
    from tasks.textify.readers import is_10x, open_cells

    try:
        cfg = Cells(source=source, use_raw=layer is None and not is_10x(source) if raw is None else raw,
                    layer=layer,
                    gene_symbols=gene_symbols, expect_counts=expect_counts, label_key=label_key,
                    obs_keys=obs_key, top_k=top_k,
                    separator=separator, min_genes=min_genes, min_counts=min_counts,
                    max_mito_fraction=max_mito_fraction, target_sum=target_sum,
                    top_values=top_values, chunk_size=chunk_size, on_bad_record="drop" if drop_bad else "error")
        with open_cells(source, cfg) as cells:
            counts = write_cell_sentences(cells, out, cfg, seed, progress=True)
    except Exception as err:  # noqa: BLE001 - only input errors are turned into one line
        if not _is_input_error(err):
            raise
        raise _bad_input(err) from None
    typer.echo(f"{counts.cells_out} of {counts.cells_in} cells -> {out} "
               f"(dropped: {_nonzero(counts.dropped)})")


@textify_app.command("dna")
def textify_dna(
    source: list[str] = typer.Argument(..., help="FASTA/GenBank files or folders (.gz too); pkg:relpath "
                                       "for data shipped in a package. Last argument: OUT."),
    window: int = typer.Option(_default(Dna, "window"), help="Window length in bases."),
    stride: int = typer.Option(_default(Dna, "stride"), help="Step between window starts."),
    min_window: int = typer.Option(_default(Dna, "min_window"), help="Drop a shorter last window."),
    max_windows: int = typer.Option(_default(Dna, "max_windows_per_record"), help="Windows kept per record."),
    max_n_fraction: float = typer.Option(_default(Dna, "max_n_fraction"), help="Skip windows with more N."),
    drop_bad: bool = typer.Option(False, "--drop-bad", help="Drop records with letters outside ACGTN, "
                                  "empty or duplicate ids (counted) instead of failing."),
) -> None:
    """DNA to windows of <dna>...</dna> text with their GC fraction: textify dna IN... OUT."""
    from tasks.common.schemas import DnaWindows
    from tasks.textify.sequences import dna_windows
    from tasks.common.storage import write_table

    *inputs, out = source
    if not inputs:
        raise _bad_input(ValueError("give at least one input and the output path"))
    try:
        cfg = Dna(sources=inputs, window=window, stride=stride, min_window=min_window,
                  max_windows_per_record=max_windows, max_n_fraction=max_n_fraction,
                  on_bad_record="drop" if drop_bad else "error")
        df, counts = dna_windows(inputs, cfg)
        write_table(df, out, DnaWindows)
    except Exception as err:  # noqa: BLE001
        if not _is_input_error(err):
            raise
        raise _bad_input(err) from None
    typer.echo(f"{len(df)} windows from {counts.records_out} of {counts.records_in} records -> {out} "
               f"(dropped: {_nonzero(counts.dropped)})")


@textify_app.command("proteins")
def textify_proteins(
    source: list[str] = typer.Argument(..., help="FASTA files or folders (.gz too); pkg:relpath for "
                                       "data shipped in a package. Last argument: OUT."),
    max_length: int = typer.Option(_default(Proteins, "max_length"), help="Longer proteins are dropped."),
    drop_bad: bool = typer.Option(False, "--drop-bad", help="Drop records with letters outside the "
                                  "amino-acid alphabet, empty or duplicate ids (counted) instead of failing."),
) -> None:
    """Proteins to <protein>...</protein> text (20 amino acids + X B Z U O; a final * is removed)."""
    from tasks.common.schemas import ProteinSequences
    from tasks.textify.sequences import protein_texts
    from tasks.common.storage import write_table

    *inputs, out = source
    if not inputs:
        raise _bad_input(ValueError("give at least one input and the output path"))
    try:
        cfg = Proteins(sources=inputs, max_length=max_length,
                       on_bad_record="drop" if drop_bad else "error")
        df, counts = protein_texts(inputs, cfg)
        write_table(df, out, ProteinSequences)
    except Exception as err:  # noqa: BLE001
        if not _is_input_error(err):
            raise
        raise _bad_input(err) from None
    typer.echo(f"{len(df)} proteins from {counts.records_in} records -> {out} "
               f"(dropped: {_nonzero(counts.dropped)})")


def _is_input_error(err: Exception) -> bool:
    from pydantic import ValidationError

    from tasks.common.errors import InputError

    return isinstance(err, (InputError, ValidationError))


# --- promote: the model registry ----------------------------------------------------------------
@app.command("promote")
def promote(dry_run: bool = typer.Option(False, "--dry-run", help="Say what would happen; change nothing.")) -> None:
    """Move the registry's champion alias to the challenger that evaluate registered, if it passes the
    gate (params.yaml: registry): the lower end of its mean log-likelihood accuracy's interval above
    chance and the majority baseline, and above the champion by the paired bootstrap. Prints the
    decision in one line; running it twice changes nothing the second time."""
    from flows.promote import promote_flow
    from tasks.common.errors import run_stage

    decision = {}
    run_stage(lambda: decision.update(result=promote_flow(dry_run=dry_run)))
    d = decision["result"]
    typer.echo(f"challenger v{d.challenger}, champion v{d.champion}: {d.reason}")


@app.command("plots")
def plots(out: Path = typer.Option(Path("dvc_plots"), help="Folder of the page (index.html).")) -> None:
    """Every DVC plot of dvc.yaml on one HTML page that opens offline (Vega inline, fetched once with
    npm pack; `dvc plots show` alone loads it from a CDN)."""
    from tasks.offline_plots import render

    try:
        page = render(out)
    except (RuntimeError, subprocess.CalledProcessError) as err:
        typer.echo(f"error: {err}" + (f"\n{err.stderr}" if getattr(err, "stderr", None) else ""), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {page}")


# --- limit: retrieval benchmark -----------------------------------------------------------------
limit_app = typer.Typer(help="LIMIT-style retrieval benchmark.", **HELP)
app.add_typer(limit_app, name="limit")


def _input_errors_exit(fn):
    """Bad input: one line on stderr and exit code 2, as the stages do."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from tasks.common.errors import InputError

        try:
            return fn(*args, **kwargs)
        except (InputError, ValueError) as err:
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from None
    return wrapper


@limit_app.command("eval")
@_input_errors_exit
def limit_eval(
    path: Path = typer.Argument(..., help="BEIR folder: corpus.jsonl, queries.jsonl, qrels.jsonl or qrels/test.tsv."),
    out: Path = typer.Option(..., "--out", help="Metrics JSON to write."),
    retriever: list[str] = typer.Option(["bm25", "dense"], "--retriever",
                                        help="bm25, dense, hybrid, late or rerank; repeat for several."),
    dim: list[int] = typer.Option([], "--dim", help="Dense truncation dimensions (default: the model's full size)."),
    late_dim: list[int] = typer.Option([], "--late-dim", help="Per-token dimensions for late (default: full)."),
    model: str = typer.Option("all-MiniLM-L6-v2", help="sentence-transformers name or path."),
    rerank_model: str | None = typer.Option(None, help="Cross-encoder name or path for rerank."),
    max_queries: int | None = typer.Option(None, help="Evaluate a seeded subset of the queries."),
    seed: int = typer.Option(0, help="Seed of the query subset."),
    table: Path | None = typer.Option(None, help="Also write the markdown table here."),
    allow_unjudged: bool = typer.Option(False, help="Drop queries without relevant documents instead of failing."),
) -> None:
    """Recall@2/10/20/100 and nDCG@10 of each retriever on a BEIR folder (JSON + markdown table)."""
    from tasks.limit.beir import load_beir
    from tasks.limit.evaluation import evaluate, make_encoder, subsample
    from tasks.limit.metrics import markdown_table
    from tasks.common.params import Limit
    from tasks.limit.retrieval import load_cross_encoder
    from tasks.common.storage import write_json

    data = subsample(load_beir(path, allow_unjudged=allow_unjudged), max_queries, seed)
    needs_encoder = any(r in retriever for r in ("dense", "hybrid", "late", "rerank"))
    encoder = make_encoder(Limit(dense_model=model, retrievers=retriever)) if needs_encoder else None
    full = [encoder.dimension] if encoder is not None else [1]
    cfg = Limit(retrievers=retriever, dense_model=model, dims=dim or full, late_dims=late_dim or full,
                rerank_model=rerank_model)
    cross = load_cross_encoder(rerank_model) if "rerank" in retriever else None
    # progress on stderr: one line per retriever as it finishes (the evaluation module logs them)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("tasks.limit").setLevel(logging.INFO)
    typer.echo(f"{path}: {len(data.doc_ids)} documents, {len(data.query_ids)} queries; "
               f"retrievers {', '.join(retriever)}", err=True)
    rows, skipped = evaluate(data, cfg, encoder, cross)
    results = {r["retriever"]: {k: v for k, v in r.items() if k not in ("retriever", "family", "dim")} for r in rows}
    write_json({"dataset": str(path), "documents": len(data.doc_ids), "queries": len(data.query_ids),
                "results": results, "skipped": skipped}, out)
    md = markdown_table(results, title=f"{path} ({len(data.doc_ids)} documents, {len(data.query_ids)} queries)")
    md += "".join(f"\n\n_{name} skipped: {why}._" for name, why in skipped.items())
    if table:
        table.write_text(md + "\n")
    typer.echo(md)
    typer.echo(f"wrote {out}" + (f" and {table}" if table else ""), err=True)


@limit_app.command("generate")
@_input_errors_exit
def limit_generate(
    out: Path = typer.Argument(..., help="Folder to write (BEIR layout)."),
    vocabulary: str = typer.Option("likes", help="likes or biomedical."),
    queries: int = typer.Option(200, help="Number of queries m."),
    k: int = typer.Option(2, help="Relevant documents per query."),
    pattern: str = typer.Option("dense", help="dense, random, cycle or disjoint."),
    docs: int | None = typer.Option(None, help="Corpus size N (default: relevant documents only)."),
    attributes: int | None = typer.Option(None, help="Attributes per document L."),
    hpo_terms: Path = typer.Option(Path("data/corpus/hpo_terms.parquet"), help="HpoTerms table (biomedical)."),
    check_model: str | None = typer.Option(None, help="Also check documents fit this embedder's max length."),
    seed: int = typer.Option(0),
) -> None:
    """Write a validated LIMIT-style set."""
    from tasks.limit import generator as gen
    from tasks.limit.beir import write_beir
    from tasks.limit.evaluation import token_limits
    from tasks.limit.retrieval import Encoder
    from tasks.common.schemas import HpoTerms
    from tasks.common.storage import read_table

    if vocabulary == "biomedical":
        vocab = gen.biomedical_vocabulary(read_table(hpo_terms, HpoTerms), seed=seed)
    elif vocabulary == "likes":
        vocab = gen.likes_vocabulary()
    else:
        raise ValueError(f"vocabulary {vocabulary!r} is not likes or biomedical")
    data = gen.generate(vocab, queries, k, pattern, n_docs=docs, attributes_per_doc=attributes, seed=seed)
    gen.validate(data, vocab, token_limits(Encoder(check_model)) if check_model else [])
    write_beir(data, out)
    typer.echo(f"{out}: {len(data.doc_ids)} documents, {len(data.query_ids)} queries ({vocab.name}, {pattern})")


if __name__ == "__main__":
    app()
