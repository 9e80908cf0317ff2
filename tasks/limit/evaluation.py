"""Evaluate the configured retrievers on one BEIR set: shared by the limit stage and the CLI.

>>> from tasks.common.params import Limit
>>> data = BeirSet(["a", "b", "c"], ["Ann likes Tapirs.", "Bo likes Limes.", "Cy likes Figs."],
...                ["q0"], ["Who likes Limes?"], {"q0": {"b": 1}})
>>> rows, skipped = evaluate(data, Limit(retrievers=["bm25"]))
>>> rows[0]["retriever"], rows[0]["recall_at_2"], skipped
('bm25', 100.0, {})
"""
from __future__ import annotations

import logging

import numpy as np

from tasks.limit import retrieval
from tasks.limit.generator import TokenLimit
from tasks.limit.beir import BeirSet
from tasks.limit.metrics import RECALL_KS, score_run
from tasks.common.params import Limit

log = logging.getLogger(__name__)
DEPTH = max(RECALL_KS)  # every metric needs at most the top 100


def subsample(data: BeirSet, max_queries: int | None, seed: int) -> BeirSet:
    """A seeded subset of the queries (same corpus), in their original order."""
    if max_queries is None or max_queries >= len(data.query_ids):
        return data
    keep = np.sort(np.random.default_rng(seed).choice(len(data.query_ids), max_queries, replace=False))
    return data.subset_queries(keep.tolist())


def make_encoder(cfg: Limit, cache_dir=retrieval.DEFAULT_CACHE) -> retrieval.Encoder:
    return retrieval.Encoder(cfg.dense_model, cache_dir=cache_dir, batch_size=cfg.batch_size,
                             trust_remote_code=cfg.trust_remote_code, keep_tokens="late" in cfg.retrievers)


def token_limits(encoder: retrieval.Encoder | None, cross_encoder=None) -> list[TokenLimit]:
    """(model, token counter, max length) of every model that reads whole documents."""
    limits: list[TokenLimit] = []
    if encoder is not None:
        limits.append((encoder.model_name, encoder.count_tokens, encoder.max_seq_length))
    if cross_encoder is not None:
        tok = cross_encoder.tokenizer
        limits.append((str(getattr(cross_encoder, "model_name", "cross-encoder")),
                       lambda texts: [len(ids) for ids in tok(texts)["input_ids"]],
                       int(getattr(cross_encoder, "max_length", None) or tok.model_max_length)))
    return limits


def build_retrievers(cfg: Limit, encoder: retrieval.Encoder | None,
                     cross_encoder=None) -> tuple[list[tuple[str, int | None, retrieval.Retriever]], dict[str, str]]:
    """(family, dim, retriever) triples in table order, and the skipped ones with the reason."""
    out: list[tuple[str, int | None, retrieval.Retriever]] = []
    skipped: dict[str, str] = {}
    full = max(cfg.dims) if cfg.dims else None
    for family in cfg.retrievers:
        if family == "bm25":
            out.append(("bm25", None, retrieval.BM25()))
        elif family == "dense":
            out += [("dense", d, retrieval.Dense(encoder, d, name=f"dense@{d}")) for d in sorted(cfg.dims)]
        elif family == "hybrid":
            parts = [retrieval.BM25(), retrieval.Dense(encoder, full, name=f"dense@{full}")]
            out.append(("hybrid", full, retrieval.Hybrid(parts, cfg.rrf_k, cfg.fusion_depth)))
        elif family == "late":
            out += [("late", d, retrieval.LateInteraction(encoder, d, name=f"late@{d}"))
                    for d in sorted(cfg.late_dims)]
        elif family == "rerank":
            if cross_encoder is None:
                skipped["rerank"] = ("no cross-encoder configured (limit.rerank_model is null)"
                                     if not cfg.rerank_model else f"cross-encoder {cfg.rerank_model!r} unavailable")
                continue
            first = retrieval.Hybrid([retrieval.BM25(), retrieval.Dense(encoder, full, name=f"dense@{full}")],
                                     cfg.rrf_k, cfg.fusion_depth)
            out.append(("rerank", None, retrieval.Rerank(first, cross_encoder, cfg.rerank_depth)))
    return out, skipped


def run_one(retriever: retrieval.Retriever, data: BeirSet) -> dict[str, float]:
    """Index the corpus, search every query, score the top 100 (speed lives in bench/retrieval.py:
    here embeddings often come from the cache, so timings would mislead)."""
    retriever.index(data.doc_texts)
    ids, _ = retriever.search(data.query_texts, DEPTH)
    ranked = [[data.doc_ids[j] for j in row] for row in ids]
    return score_run(ranked, [data.qrels[q] for q in data.query_ids])


def evaluate(data: BeirSet, cfg: Limit, encoder: retrieval.Encoder | None = None,
             cross_encoder=None) -> tuple[list[dict], dict[str, str]]:
    """One row per retriever: family, dim and metrics (percent); plus skipped retrievers."""
    needs_encoder = any(f in cfg.retrievers for f in ("dense", "hybrid", "late", "rerank"))
    if encoder is None and needs_encoder:
        encoder = make_encoder(cfg)
    built, skipped = build_retrievers(cfg, encoder, cross_encoder)
    rows = []
    for family, dim, retriever in built:
        metrics = run_one(retriever, data)
        log.info("%s: R@2 %.1f R@10 %.1f", retriever.name, metrics["recall_at_2"], metrics["recall_at_10"])
        rows.append({"retriever": retriever.name, "family": family, "dim": dim, **metrics})
    return rows, skipped
