"""``omicsforge``: ad-hoc commands on a user's own files, reusing the stages' tasks.

Pipeline runs go through ``dvc repro``; these commands are for one-off use (textify my h5ad,
evaluate this BEIR folder) and write nothing to MLflow.
"""
from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="omicsforge: omics as text for language models.", no_args_is_help=True)

# --- textify: cells / dna / proteins ------------------------------------------------------------
textify_app = typer.Typer(help="Write omics data as text (<cell>, <dna>, <protein>).", no_args_is_help=True)
app.add_typer(textify_app, name="textify")


# --- limit: retrieval benchmark -----------------------------------------------------------------
limit_app = typer.Typer(help="LIMIT-style retrieval benchmark.", no_args_is_help=True)
app.add_typer(limit_app, name="limit")


def _input_errors_exit(fn):
    """Bad input: one line on stderr and exit code 2, as the stages do."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from tasks.errors import InputError

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
    from tasks.limit_beir import load_beir
    from tasks.limit_eval import evaluate, make_encoder, subsample
    from tasks.limit_metrics import markdown_table
    from tasks.params import Limit
    from tasks.retrieval import load_cross_encoder
    from tasks.storage import write_json

    data = subsample(load_beir(path, allow_unjudged=allow_unjudged), max_queries, seed)
    needs_encoder = any(r in retriever for r in ("dense", "hybrid", "late", "rerank"))
    encoder = make_encoder(Limit(dense_model=model, retrievers=retriever)) if needs_encoder else None
    full = [encoder.dimension] if encoder is not None else [1]
    cfg = Limit(retrievers=retriever, dense_model=model, dims=dim or full, late_dims=late_dim or full,
                rerank_model=rerank_model)
    cross = load_cross_encoder(rerank_model) if "rerank" in retriever else None
    rows, skipped = evaluate(data, cfg, encoder, cross)
    results = {r["retriever"]: {k: v for k, v in r.items() if k not in ("retriever", "family", "dim")} for r in rows}
    write_json({"dataset": str(path), "documents": len(data.doc_ids), "queries": len(data.query_ids),
                "results": results, "skipped": skipped}, out)
    md = markdown_table(results, title=f"{path} ({len(data.doc_ids)} documents, {len(data.query_ids)} queries)")
    md += "".join(f"\n\n_{name} skipped: {why}._" for name, why in skipped.items())
    if table:
        table.write_text(md + "\n")
    typer.echo(md)


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
    from tasks import limit as gen
    from tasks.limit_beir import write_beir
    from tasks.limit_eval import token_limits
    from tasks.retrieval import Encoder
    from tasks.schemas import HpoTerms
    from tasks.storage import read_table

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
