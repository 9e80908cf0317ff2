"""The free-embedding experiment: the best any embedder of dimension d could do on a qrel matrix.

Query and document vectors are parameters optimised directly on the qrels (no text, no model):
Adam on an InfoNCE loss, a softmax over all documents for each query, with every relevant document
as a positive. For the k = 2 all-combinations pattern (every pair of n documents is a query) we
grow n until the optimiser no longer reaches 100% accuracy — every query's top 2 are exactly its
pair — and report the largest n solved as the critical n for d. Several random restarts run as one
batched problem; a size counts as solved if any restart solves it.

This measures what optimisation finds, a lower bound on what is representable: a failure at n does
not prove that no d-dimensional embedding exists.

>>> solved, steps = solve_free_embedding(n_docs=5, dim=4, seed=0)
>>> solved
True
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import combinations

import numpy as np
import torch

log = logging.getLogger(__name__)


def pair_qrels(n_docs: int, k: int = 2) -> torch.Tensor:
    """(C(n, k), n) 0/1 matrix: one query per k-subset of the documents."""
    subsets = list(combinations(range(n_docs), k))
    qrels = torch.zeros(len(subsets), n_docs)
    for q, subset in enumerate(subsets):
        qrels[q, list(subset)] = 1.0
    return qrels


def _accuracy(scores: torch.Tensor, qrels: torch.Tensor) -> torch.Tensor:
    """Per restart: fraction of queries whose lowest relevant score beats every other score."""
    worst_pos = scores.masked_fill(qrels == 0, float("inf")).amin(-1)
    best_neg = scores.masked_fill(qrels == 1, float("-inf")).amax(-1)
    return (worst_pos > best_neg).float().mean(-1)


def solve_free_embedding(n_docs: int, dim: int, k: int = 2, steps: int = 4000, lr: float = 0.05,
                         restarts: int = 4, temperature: float = 0.1, seed: int = 0) -> tuple[bool, int]:
    """Optimise free unit vectors for the all-k-subsets qrels of ``n_docs``; (solved, steps used).

    Vectors are unit-normalised (cosine scores, as embedders use) and divided by a temperature.
    The loop stops as soon as one restart reaches 100% accuracy, checked every 50 steps.
    """
    gen = torch.Generator().manual_seed(seed)
    qrels = pair_qrels(n_docs, k)
    n_queries = qrels.shape[0]
    docs = torch.randn(restarts, n_docs, dim, generator=gen).requires_grad_()
    queries = torch.randn(restarts, n_queries, dim, generator=gen).requires_grad_()
    opt = torch.optim.Adam([docs, queries], lr=lr)
    positives = qrels / qrels.sum(-1, keepdim=True)
    for step in range(1, steps + 1):
        scores = torch.nn.functional.normalize(queries, dim=-1) @ \
            torch.nn.functional.normalize(docs, dim=-1).transpose(1, 2)
        # InfoNCE with several positives: mean over positives of -log softmax over all documents.
        loss = -(positives * torch.log_softmax(scores / temperature, dim=-1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0 and _accuracy(scores.detach(), qrels).max() == 1.0:
            return True, step
    with torch.no_grad():
        scores = torch.nn.functional.normalize(queries, dim=-1) @ \
            torch.nn.functional.normalize(docs, dim=-1).transpose(1, 2)
        return bool(_accuracy(scores, qrels).max() == 1.0), steps


@contextmanager
def _one_thread() -> Iterator[None]:
    # The tensors are tiny: thread start-up dominates, and one thread runs several times faster.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def critical_n(dim: int, k: int = 2, start: int | None = None, max_n: int = 60, **solver) -> int:
    """Largest n whose all-k-subsets qrels were solved at ``dim``, growing n from ``start``.

    One failure ends the search: a larger n contains the smaller problem, so it is no easier.
    """
    n = start or k + 1
    best = n - 1
    while n <= max_n:
        with _one_thread():
            solved, steps = solve_free_embedding(n, dim, k, **solver)
        log.info("free embedding d=%d n=%d: %s after %d steps", dim, n, "solved" if solved else "not solved", steps)
        if not solved:
            break
        best, n = n, n + 1
    return best


def critical_curve(dims: list[int], k: int = 2, max_n: int = 60, **solver) -> dict[int, int]:
    """Critical n for each d; each search starts at the previous d's answer (n grows with d)."""
    out: dict[int, int] = {}
    start = k + 1
    for dim in sorted(dims):
        out[dim] = critical_n(dim, k, start=start, max_n=max_n, **solver)
        start = max(out[dim], k + 1)
    return out


def polynomial_fit(curve: dict[int, int], degree: int = 2) -> list[float]:
    """Least-squares polynomial of critical n in d (coefficients, lowest power first).

    The paper extrapolates with a cubic fitted over many d; over the five small d we can afford
    on a CPU a cubic overfits (its leading coefficient came out negative), so the default is
    a quadratic. The degree is capped below the number of points.
    """
    dims = np.array(sorted(curve), dtype=float)
    values = np.array([curve[d] for d in sorted(curve)], dtype=float)
    degree = min(degree, len(dims) - 1)
    return [float(c) for c in np.polynomial.polynomial.polyfit(dims, values, degree)]
