"""Queries per second of bm25s and rank_bm25 on the same 50k-document LIMIT-style corpus.

    PYTHONPATH=. python bench/retrieval.py [--docs 50000] [--queries 500] [--slow-queries 20]

Both libraries get the same tokens (tasks.limit.retrieval.tokenize) and the same Okapi parameters
(k1 = 1.5, b = 0.75). rank_bm25 scores every document in a Python-level loop per query (a few
queries per second at this size), so it is timed on the first ``--slow-queries`` queries only;
bm25s answers all of them. Both answers are top-100 lists; their top-1 agreement is printed as a
sanity check (the two use slightly different idf formulas, so it need not be 100%).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--slow-queries", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import bm25s
    from rank_bm25 import BM25Okapi

    from tasks.limit.generator import generate, likes_vocabulary
    from tasks.limit.retrieval import tokenize

    start = time.perf_counter()
    data = generate(likes_vocabulary(), n_queries=args.queries, k=2, n_docs=args.docs,
                    attributes_per_doc=40, seed=args.seed)
    doc_tokens = [tokenize(t) for t in data.doc_texts]
    query_tokens = [tokenize(q) for q in data.query_texts]
    print(f"corpus: {len(data.doc_ids)} documents, {len(data.query_ids)} queries "
          f"(generated and tokenised in {time.perf_counter() - start:.1f} s)")

    start = time.perf_counter()
    fast = bm25s.BM25(k1=1.5, b=0.75, method="lucene")
    fast.index(doc_tokens, show_progress=False)
    print(f"bm25s index: {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    fast_ids, _ = fast.retrieve(query_tokens, k=100, show_progress=False, n_threads=1)
    fast_s = time.perf_counter() - start
    fast_qps = len(query_tokens) / fast_s
    print(f"bm25s: {len(query_tokens)} queries in {fast_s:.2f} s = {fast_qps:,.1f} queries/s (1 thread)")

    start = time.perf_counter()
    slow = BM25Okapi(doc_tokens, k1=1.5, b=0.75)
    print(f"rank_bm25 index: {time.perf_counter() - start:.1f} s")
    subset = query_tokens[: args.slow_queries]
    start = time.perf_counter()
    slow_ids = [np.argsort(-slow.get_scores(q), kind="stable")[:100] for q in subset]
    slow_s = time.perf_counter() - start
    slow_qps = len(subset) / slow_s
    print(f"rank_bm25: {len(subset)} queries (a subset) in {slow_s:.2f} s = {slow_qps:,.2f} queries/s")

    agree = np.mean([fast_ids[i][0] == slow_ids[i][0] for i in range(len(subset))])
    print(f"speed-up bm25s / rank_bm25: {fast_qps / slow_qps:,.0f}x; top-1 agreement on the subset: {agree:.0%}")


if __name__ == "__main__":
    main()
