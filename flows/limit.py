"""limit: the LIMIT-style retrieval benchmark for the retrievers that feed annotation.

Generates the biomedical LIMIT-style set from HPO, evaluates BM25, dense embeddings at several
truncated dimensions, a BM25+dense hybrid, late interaction (and a cross-encoder when one is
configured) on it and on LIMIT-small, runs the free-embedding experiment, and writes
``data/limit/`` (the generated set), ``reports/limit/`` (metrics, tables, curves, report).
"""
import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import re
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.limit import generator as gen
from tasks.limit import free as limit_free
from tasks.limit import report as limit_report
from tasks.common.errors import run_stage
from tasks.limit.beir import BeirSet, load_beir, write_beir
from tasks.limit.evaluation import evaluate, make_encoder, subsample, token_limits
from tasks.common.params import Limit, load_params
from tasks.limit.retrieval import load_cross_encoder
from tasks.common.schemas import HpoTerms
from tasks.common.storage import atomic_path, read_table, write_json
from tasks.common.tracking import stage_run

HPO_TERMS = Path("data/corpus/hpo_terms.parquet")
OUT_DIR = Path("data/limit")
REPORT_DIR = Path("reports/limit")


def _metric_name(retriever: str) -> str:
    # MLflow keys allow letters, digits and _-. /: only: "hybrid(bm25+dense@384)" -> "hybrid_bm25_dense_d384_"
    return re.sub(r"[^\w.\-/: ]", "_", retriever.replace("@", "_d"))


@task(cache_policy=NO_CACHE)
def generate_biomedical(cfg: Limit, seed: int, limits: list) -> tuple[BeirSet, gen.Vocabulary]:
    g = cfg.generator
    if g.vocabulary == "biomedical":
        hpo = read_table(HPO_TERMS, HpoTerms)
        vocab = gen.biomedical_vocabulary(hpo, seed=seed, max_label_words=g.max_label_words)
    else:
        vocab = gen.likes_vocabulary()
    data = gen.generate(vocab, g.n_queries, g.k, g.pattern, n_docs=g.n_docs,
                        attributes_per_doc=g.attributes_per_doc, n_relevant=g.n_relevant, seed=seed)
    gen.validate(data, vocab, limits)
    get_run_logger().info("generated %s set: %d documents, %d queries, validated against %s",
                          vocab.name, len(data.doc_ids), len(data.query_ids), [m for m, _, _ in limits])
    return data, vocab


@task(cache_policy=NO_CACHE)
def evaluate_set(name: str, data: BeirSet, cfg: Limit, seed: int, encoder, cross_encoder) -> list[dict]:
    data = subsample(data, cfg.max_queries, seed)
    rows, _ = evaluate(data, cfg, encoder, cross_encoder)
    get_run_logger().info("%s (%d queries): %s", name, len(data.query_ids),
                          ", ".join(f"{r['retriever']} R@2={r['recall_at_2']:.1f}" for r in rows))
    return rows


@task(cache_policy=NO_CACHE)
def free_embedding(cfg: Limit, seed: int) -> tuple[dict[int, int], list[float]]:
    f = cfg.free
    curve = limit_free.critical_curve(f.dims, k=f.k, max_n=f.max_n, steps=f.steps, lr=f.lr,
                                      restarts=f.restarts, temperature=f.temperature, seed=seed)
    get_run_logger().info("free embedding, critical n by d: %s", curve)
    return curve, limit_free.polynomial_fit(curve)


@flow(name="limit")
def limit() -> None:
    params = load_params(require=("limit",))
    cfg, seed = params.limit, params.base.seed
    with stage_run("limit", params) as run:
        needs_encoder = any(f in cfg.retrievers for f in ("dense", "hybrid", "late", "rerank"))
        encoder = make_encoder(cfg) if needs_encoder else None
        cross_encoder, skipped = None, {}
        if "rerank" in cfg.retrievers:
            cross_encoder = load_cross_encoder(cfg.rerank_model, cfg.trust_remote_code)
            if cross_encoder is None:  # logged, then reported in the table and metrics; no stand-in
                skipped["rerank"] = ("no cross-encoder configured (limit.rerank_model is null)" if not cfg.rerank_model
                                     else f"cross-encoder {cfg.rerank_model!r} could not be loaded")

        generated, vocab = generate_biomedical(cfg, seed, token_limits(encoder, cross_encoder))
        write_beir(generated, OUT_DIR / vocab.name)

        sets = {vocab.name: generated} | {Path(p).name: load_beir(p) for p in cfg.datasets}
        results = {name: evaluate_set(name, data, cfg, seed, encoder, cross_encoder) for name, data in sets.items()}
        curve, fit = free_embedding(cfg, seed)

        sizes = {name: (len(d.doc_ids), len(subsample(d, cfg.max_queries, seed).query_ids))
                 for name, d in sets.items()}
        table_md = limit_report.tables(results, skipped)
        metrics = {name: {r["retriever"]: {k: v for k, v in r.items() if k not in ("retriever", "family", "dim")}
                          for r in rows} for name, rows in results.items()}
        metrics["free_embedding"] = {"critical_n": {str(d): n for d, n in curve.items()}, "fit": fit}
        metrics["skipped"] = skipped
        # the generated set's headline: LIMIT's point is a dense embedding losing to BM25 at top-2
        summary = {f"{kind}_r2": metrics[vocab.name][name]["recall_at_2"]
                   for kind, name in (("bm25", "bm25"), ("dense", f"dense@{max(cfg.dims)}"))
                   if name in metrics[vocab.name]}
        figures = {family: limit_report.plot_recall_vs_dim(results, family)
                   for family in limit_report.CURVE_FAMILIES if any(r["family"] == family
                                                                     for rows in results.values() for r in rows)}
        with atomic_path(REPORT_DIR) as tmp:  # the whole report folder appears at once, or not at all
            tmp.mkdir()
            write_json(metrics, tmp / "metrics.json")
            write_json(summary, tmp / "summary.json")
            (tmp / "table.md").write_text(table_md)
            (tmp / "report.md").write_text(limit_report.report_markdown(results, skipped, curve, fit, sizes, table_md))
            limit_report.write_curves(results, tmp / "plots")
            (tmp / "figures").mkdir()
            for family, fig in figures.items():
                fig.savefig(tmp / "figures" / f"recall_vs_dim_{family}.png", dpi=120)

        run.log_metrics({name: {_metric_name(r["retriever"]): {k: v for k, v in r.items()
                                                              if k.startswith(("recall", "ndcg"))}
                                for r in rows} for name, rows in results.items()})
        run.log_metrics({"free_embedding": {"critical_n": {f"d{d}": n for d, n in curve.items()}}})
        for family, fig in figures.items():
            run.log_figure(fig, f"recall_vs_dim_{family}.png")
        run.log_text(table_md, "table.md")
        run.publish(summary, table_md)
        run.log_artifact(REPORT_DIR, "reports")
        for name, rows in results.items():
            run.log_table(pd.DataFrame(rows), f"limit_{name}", rows=len(rows))
        get_run_logger().info("\n%s", table_md)


if __name__ == "__main__":
    run_stage(limit)
