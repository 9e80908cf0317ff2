"""LIMIT-style retrieval sets with a swappable vocabulary (built from the paper's description).

Each of ``m`` queries asks for one attribute ("Who likes Tapirs?"); the documents holding that
attribute are exactly its ``k`` relevant documents, chosen by a qrel pattern over ``n`` relevant
documents. Every document lists ``L`` attributes: the attributes of the queries it answers plus
fillers that no query asks about. The small tier holds only the ``n`` relevant documents (like
LIMIT-small); a larger tier adds ``N - n`` documents made only of fillers.

Two vocabularies: people who like things (our own word lists, :mod:`tasks.limit.vocab`) and
invented gene symbols annotated with HPO phenotype labels that form an antichain (no label is an
ancestor of another), so no document is relevant by the ontology's true-path rule alone.

>>> vocab = likes_vocabulary()
>>> data = generate(vocab, n_queries=6, k=2, pattern="dense", seed=0)
>>> len(data.doc_ids), len(data.query_ids), data.query_texts[0].startswith("Who likes ")
(4, 6, True)
>>> validate(data, vocab)
>>> join_attributes(["A", "B", "C"])
'A, B and C'
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from tasks.limit import vocab as limit_vocab
from tasks.common.errors import InputError
from tasks.limit.beir import BeirSet

PATTERNS = ("dense", "random", "cycle", "disjoint")
PHENOTYPE_ROOT = "HP:0000118"  # "Phenotypic abnormality": excludes inheritance modes, modifiers
_ENUMERATE_LIMIT = 200_000     # above this many k-subsets, sample them instead of listing them


@dataclass(frozen=True)
class Vocabulary:
    name: str
    attributes: list[str]
    make_entities: Callable[[int, np.random.Generator], list[str]]
    relation: str   # "likes": "<entity> likes A, B and C."
    question: str   # "Who likes {}?"
    ancestors: dict[str, frozenset[str]] = field(default_factory=dict)  # label -> ancestor labels

    def __post_init__(self):
        bad = [a for a in self.attributes if ", " in a or " and " in a or a.endswith(".")]
        if bad:
            raise ValueError(f"vocabulary {self.name}: attribute {bad[0]!r} would not parse back")


def join_attributes(attrs: Sequence[str]) -> str:
    return attrs[0] if len(attrs) == 1 else ", ".join(attrs[:-1]) + " and " + attrs[-1]


def document_text(vocab: Vocabulary, entity: str, attrs: Sequence[str]) -> str:
    return f"{entity} {vocab.relation} {join_attributes(attrs)}."


def parse_document(vocab: Vocabulary, text: str) -> tuple[str, list[str]]:
    entity, sep, rest = text.partition(f" {vocab.relation} ")
    if not sep or not rest.endswith("."):
        raise ValueError(f"not of the form '<entity> {vocab.relation} A, B and C.'")
    items = rest[:-1].split(", ")
    head, _, last = items[-1].rpartition(" and ")
    return entity, items[:-1] + ([head, last] if head else [last])


def parse_query(vocab: Vocabulary, text: str) -> str:
    prefix, suffix = vocab.question.split("{}")
    if not (text.startswith(prefix) and text.endswith(suffix)):
        raise ValueError(f"not of the form {vocab.question!r}")
    return text[len(prefix): len(text) - len(suffix)]


# --- vocabularies -------------------------------------------------------------------------------

def _people(n: int, rng: np.random.Generator) -> list[str]:
    first, heads, tails = limit_vocab.FIRST_NAMES, limit_vocab.SURNAME_HEADS, limit_vocab.SURNAME_TAILS
    space = len(first) * len(heads) * len(tails)
    if n > space:
        raise ValueError(f"asked for {n} names; the name lists make {space}")
    picks = rng.choice(space, size=n, replace=False)
    return [f"{first[i // (len(heads) * len(tails))]} {heads[i // len(tails) % len(heads)]}"
            f"{tails[i % len(tails)]}" for i in picks]


def _gene_symbols(n: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list(limit_vocab.GENE_LETTERS))
    out: dict[str, None] = {}
    while len(out) < n:  # ~20^3 * 9 * 21 symbols: collisions are rare, so this loop is short
        stem = "".join(rng.choice(letters, size=int(rng.integers(2, 5))))
        tail = str(rng.choice(letters)) if rng.random() < 0.5 else ""
        out[f"{stem}{int(rng.integers(1, 10))}{tail}"] = None
    return list(out)


def likes_vocabulary() -> Vocabulary:
    return Vocabulary("likes", list(limit_vocab.ATTRIBUTES), _people, "likes", "Who likes {}?")


def hpo_ancestors(hpo: pd.DataFrame) -> dict[str, frozenset[str]]:
    """HP id -> all its ancestors' ids (transitive closure of ``parents``)."""
    parents = dict(zip(hpo["id"], (list(p) for p in hpo["parents"])))
    memo: dict[str, frozenset[str]] = {}

    def up(term: str) -> frozenset[str]:
        if term not in memo:
            memo[term] = frozenset()  # guards against a cycle in bad input
            direct = [p for p in parents.get(term, []) if p in parents]
            memo[term] = frozenset(direct).union(*(up(p) for p in direct))
        return memo[term]

    return {term: up(term) for term in parents}


def biomedical_vocabulary(hpo: pd.DataFrame, seed: int = 0, max_label_words: int = 2) -> Vocabulary:
    """Gene-like symbols and an antichain of short phenotype labels from ``hpo`` (schema HpoTerms)."""
    ancestors = hpo_ancestors(hpo)
    name_of = dict(zip(hpo["id"], hpo["name"]))
    seen: set[str] = set()
    candidates = []
    for term, name in zip(hpo["id"], hpo["name"]):
        key = name.lower()
        if (PHENOTYPE_ROOT in ancestors[term] and len(name.split()) <= max_label_words
                and not re.search(r",| and |[()/;.]", name) and key not in seen):
            seen.add(key)
            candidates.append(term)
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    chosen_set: set[str] = set()
    above_chosen: set[str] = set()  # every ancestor of a chosen term
    for i in rng.permutation(len(candidates)):
        term = candidates[i]
        if term in above_chosen or ancestors[term] & chosen_set:
            continue  # would be an ancestor or a descendant of a chosen label
        chosen.append(term)
        chosen_set.add(term)
        above_chosen |= ancestors[term]
    labels = [name_of[t] for t in chosen]
    label_ancestors = {name_of[t]: frozenset(name_of[a] for a in ancestors[t]) for t in chosen}
    return Vocabulary("biomedical", labels, _gene_symbols, "is annotated with",
                      "Which gene is annotated with {}?", label_ancestors)


# --- qrel patterns ------------------------------------------------------------------------------

def qrel_pattern(pattern: str, n_queries: int, k: int, n_relevant: int | None = None,
                 rng: np.random.Generator | None = None) -> tuple[list[tuple[int, ...]], int]:
    """Relevant-document positions of each query, and the number ``n`` of relevant documents.

    dense: distinct k-subsets of the smallest n with C(n, k) >= m (all of them when equal);
    random: k documents drawn per query from the same n; cycle: k consecutive documents
    (mod n, n = m); disjoint: no document shared (n = m * k).

    >>> qrel_pattern("cycle", 3, 2)[0]
    [(0, 1), (1, 2), (0, 2)]
    >>> qrel_pattern("disjoint", 2, 2)
    ([(0, 1), (2, 3)], 4)
    """
    if pattern not in PATTERNS:
        raise ValueError(f"qrel pattern {pattern!r} is not one of {PATTERNS}")
    rng = rng or np.random.default_rng(0)
    m = n_queries
    dense_n = next(n for n in range(k, m + k + 1) if math.comb(n, k) >= m)
    n = n_relevant or {"dense": dense_n, "random": dense_n, "cycle": max(m, k), "disjoint": m * k}[pattern]
    need = {"dense": dense_n, "random": k, "cycle": max(m, k), "disjoint": m * k}[pattern]
    if n < need:
        raise ValueError(f"{pattern} pattern with {m} queries of k={k} needs at least {need} relevant documents, got {n}")
    if pattern == "dense":
        if math.comb(n, k) <= _ENUMERATE_LIMIT:
            subsets = list(combinations(range(n), k))
            return [subsets[i] for i in np.sort(rng.choice(len(subsets), m, replace=False))], n
        picked: dict[tuple[int, ...], None] = {}
        while len(picked) < m:
            picked[tuple(sorted(rng.choice(n, k, replace=False).tolist()))] = None
        return list(picked), n
    if pattern == "random":
        return [tuple(sorted(rng.choice(n, k, replace=False).tolist())) for _ in range(m)], n
    if pattern == "cycle":
        return [tuple(sorted((i + j) % n for j in range(k))) for i in range(m)], n
    return [tuple(range(i * k, i * k + k)) for i in range(m)], n


# --- generation and validation ------------------------------------------------------------------

def generate(vocab: Vocabulary, n_queries: int, k: int, pattern: str = "dense", n_docs: int | None = None,
             attributes_per_doc: int | None = None, n_relevant: int | None = None, seed: int = 0) -> BeirSet:
    """A LIMIT-style set; ``n_docs=None`` is the small tier (relevant documents only)."""
    rng = np.random.default_rng(seed)
    subsets, n = qrel_pattern(pattern, n_queries, k, n_relevant, rng)
    total = n_docs or n
    if total < n:
        raise ValueError(f"n_docs={total} is below the {n} relevant documents of the {pattern} pattern")
    answers: list[list[int]] = [[] for _ in range(total)]  # query positions each document answers
    for q, subset in enumerate(subsets):
        for d in subset:
            answers[d].append(q)
    most = max(len(a) for a in answers)
    per_doc = attributes_per_doc or most
    if per_doc < most:
        raise ValueError(f"attributes_per_doc={per_doc} is below the {most} queries one document answers")
    if len(vocab.attributes) < n_queries + per_doc:
        raise ValueError(f"vocabulary {vocab.name} has {len(vocab.attributes)} attributes; "
                         f"{n_queries} queries with {per_doc} attributes per document need {n_queries + per_doc}")
    attrs = [vocab.attributes[i] for i in rng.permutation(len(vocab.attributes))]
    asked, fillers = attrs[:n_queries], attrs[n_queries:]
    need = [per_doc - len(a) for a in answers]
    # Distinct fillers per document when the list is long enough (as in LIMIT-small); otherwise
    # each document draws its own, which cannot change relevance because no query asks for them.
    spread = sum(need) <= len(fillers)
    cursor = 0
    entities = vocab.make_entities(total, rng)
    texts = []
    for d in range(total):
        if spread:
            extra, cursor = fillers[cursor: cursor + need[d]], cursor + need[d]
        else:
            extra = [fillers[i] for i in rng.choice(len(fillers), need[d], replace=False)]
        own = [asked[q] for q in answers[d]] + list(extra)
        texts.append(document_text(vocab, entities[d], [own[i] for i in rng.permutation(len(own))]))
    order = rng.permutation(total)  # relevant documents must not be a recognisable prefix
    qids = [f"query_{q}" for q in range(n_queries)]
    return BeirSet([entities[d] for d in order], [texts[d] for d in order], qids,
                   [vocab.question.format(a) for a in asked],
                   {qid: {entities[d]: 1 for d in subset} for qid, subset in zip(qids, subsets)})


TokenLimit = tuple[str, Callable[[list[str]], list[int]], int]  # (model, count tokens, max length)


def validate(data: BeirSet, vocab: Vocabulary, token_limits: Sequence[TokenLimit] = ()) -> None:
    """Fail with :class:`InputError` unless the text alone implies the qrels and fits every model.

    Checks: each query's relevant set, re-derived from the document texts, equals its qrels; no
    word of a name is a word of an attribute (BM25 would match it); no attribute is an ontology
    ancestor of another; the longest document fits the shortest max sequence length.
    """
    where = f"<generated {vocab.name} set>"
    holders: dict[str, set[str]] = {}
    used: set[str] = set()
    for did, text in zip(data.doc_ids, data.doc_texts):
        try:
            entity, attrs = parse_document(vocab, text)
        except ValueError as err:
            raise InputError(where, f"document {did!r}", str(err)) from None
        if entity != did:
            raise InputError(where, f"document {did!r}", f"text names {entity!r}, not its id")
        used.update(attrs)
        for attr in attrs:
            holders.setdefault(attr, set()).add(did)
    for qid, text in zip(data.query_ids, data.query_texts):
        try:
            derived = holders.get(parse_query(vocab, text), set())
        except ValueError as err:
            raise InputError(where, f"query {qid!r}", str(err)) from None
        if derived != data.relevant_ids(qid):
            raise InputError(where, f"query {qid!r}", f"relevant set re-derived from the text "
                             f"{sorted(derived)} differs from its qrels {sorted(data.relevant_ids(qid))}")
    attr_words: dict[str, str] = {}
    for attr in sorted(used):
        for word in re.findall(r"\w+", attr.lower()):
            attr_words.setdefault(word, attr)
    for did in data.doc_ids:
        for word in re.findall(r"\w+", did.lower()):
            if word in attr_words:
                raise InputError(where, f"document {did!r}",
                                 f"name word {word!r} collides with attribute {attr_words[word]!r}")
    for attr in sorted(used):
        above = vocab.ancestors.get(attr, frozenset()) & used
        if above:
            raise InputError(where, f"attribute {attr!r}", f"its ancestor {sorted(above)[0]!r} is also used "
                             "(labels must form an antichain)")
    for model, count, max_len in sorted(token_limits, key=lambda t: t[2]):
        lengths = count(data.doc_texts)
        worst = int(np.argmax(lengths))
        if lengths[worst] > max_len:
            raise InputError(where, f"document {data.doc_ids[worst]!r}",
                             f"{lengths[worst]} tokens exceed the max sequence length {max_len} of {model}; "
                             "use fewer queries or attributes per document")
