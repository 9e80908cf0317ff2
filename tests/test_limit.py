"""LIMIT-style generator, its validation, the free-embedding experiment and the report."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from tasks.limit import generator as gen
from tasks.limit import free as limit_free
from tasks.limit import report as limit_report
from tasks.common.errors import InputError
from tasks.limit.beir import BeirSet
from tasks.common.params import parse_params


# --- qrel patterns ------------------------------------------------------------------------------

def test_dense_pattern_is_distinct_pairs_of_the_fewest_documents():
    subsets, n = gen.qrel_pattern("dense", 1000, 2)
    assert n == 46  # C(46, 2) = 1035 >= 1000 > C(45, 2) = 990, as in LIMIT-small
    assert len(subsets) == 1000 and len(set(subsets)) == 1000
    assert all(len(s) == 2 and s[0] < s[1] < n for s in subsets)
    all_pairs, n = gen.qrel_pattern("dense", 10, 2)
    assert n == 5 and sorted(all_pairs) == sorted(__import__("itertools").combinations(range(5), 2))


def test_cycle_pattern_is_consecutive_documents():
    subsets, n = gen.qrel_pattern("cycle", 5, 3)
    assert n == 5
    assert subsets == [(0, 1, 2), (1, 2, 3), (2, 3, 4), (0, 3, 4), (0, 1, 4)]


def test_disjoint_pattern_shares_no_document():
    subsets, n = gen.qrel_pattern("disjoint", 7, 3)
    assert n == 21
    assert Counter(d for s in subsets for d in s) == Counter(range(21))


def test_random_pattern_draws_k_distinct_documents():
    subsets, n = gen.qrel_pattern("random", 50, 4, rng=np.random.default_rng(1))
    assert n == gen.qrel_pattern("dense", 50, 4)[1]
    assert len(subsets) == 50 and all(len(set(s)) == 4 and max(s) < n for s in subsets)


def test_pattern_rejects_too_few_documents():
    with pytest.raises(ValueError, match="needs at least"):
        gen.qrel_pattern("disjoint", 5, 2, n_relevant=9)


# --- generation and validation ------------------------------------------------------------------

def test_small_tier_has_only_relevant_documents_and_validates():
    vocab = gen.likes_vocabulary()
    data = gen.generate(vocab, n_queries=100, k=2, seed=3)
    assert len(data.doc_ids) == 15  # C(15, 2) = 105 >= 100
    assert all(len(data.relevant_ids(q)) == 2 for q in data.query_ids)
    gen.validate(data, vocab)
    lengths = {len(gen.parse_document(vocab, t)[1]) for t in data.doc_texts}
    assert len(lengths) == 1  # every document lists the same number of attributes


def test_larger_tier_adds_documents_no_query_asks_for():
    vocab = gen.likes_vocabulary()
    data = gen.generate(vocab, n_queries=20, k=2, pattern="cycle", n_docs=200, attributes_per_doc=30, seed=0)
    gen.validate(data, vocab)
    assert len(data.doc_ids) == 200
    relevant = set().union(*(data.relevant_ids(q) for q in data.query_ids))
    assert len(relevant) == 20
    asked = {gen.parse_query(vocab, q) for q in data.query_texts}
    for did, text in zip(data.doc_ids, data.doc_texts):
        attrs = gen.parse_document(vocab, text)[1]
        assert len(attrs) == 30
        if did not in relevant:
            assert not asked & set(attrs)


def test_validation_catches_a_corrupted_qrel():
    vocab = gen.likes_vocabulary()
    data = gen.generate(vocab, n_queries=30, k=2, seed=0)
    wrong = next(d for d in data.doc_ids if d not in data.relevant_ids("query_4"))
    qrels = dict(data.qrels) | {"query_4": {next(iter(data.relevant_ids("query_4"))): 1, wrong: 1}}
    with pytest.raises(InputError) as err:
        gen.validate(replace(data, qrels=qrels), vocab)
    assert err.value.record == "query 'query_4'" and "differs from its qrels" in err.value.problem


def test_validation_catches_a_name_attribute_collision():
    vocab = gen.likes_vocabulary()
    data = BeirSet(["Ann Kale", "Bo Holm"], ["Ann Kale likes Kale and Figs.", "Bo Holm likes Kale and Oatmeal."],
                   ["query_0"], ["Who likes Kale?"], {"query_0": {"Ann Kale": 1, "Bo Holm": 1}})
    with pytest.raises(InputError) as err:
        gen.validate(data, vocab)
    assert err.value.record == "document 'Ann Kale'" and "'kale'" in err.value.problem


def test_validation_catches_documents_longer_than_the_shortest_model():
    vocab = gen.likes_vocabulary()
    data = gen.generate(vocab, n_queries=30, k=2, seed=0)
    words = lambda texts: [len(t.split()) for t in texts]  # noqa: E731
    longest = max(words(data.doc_texts))
    gen.validate(data, vocab, [("wide", words, longest)])
    with pytest.raises(InputError, match=rf"exceed the max sequence length {longest - 1} of narrow"):
        gen.validate(data, vocab, [("wide", words, 10_000), ("narrow", words, longest - 1)])


def test_shipped_name_lists_never_collide_with_attributes():
    vocab = gen.likes_vocabulary()
    gen.validate(gen.generate(vocab, n_queries=600, k=2, seed=11), vocab)


def _tiny_hpo() -> pd.DataFrame:
    terms = [("HP:0000001", "All", []), ("HP:0000118", "Phenotypic abnormality", ["HP:0000001"]),
             ("HP:0000005", "Mode of inheritance", ["HP:0000001"]),
             ("HP:0000006", "Autosomal dominant", ["HP:0000005"])]
    labels = ["Seizure", "Ataxia", "Hypotonia", "Microcephaly", "Scoliosis", "Myopia", "Anemia",
              "Ptosis", "Tremor", "Obesity", "Deafness", "Cataract"]
    for i, name in enumerate(labels):
        terms.append((f"HP:00010{i:02d}", name, ["HP:0000118"]))
        terms.append((f"HP:00020{i:02d}", f"Focal {name.lower()}", [f"HP:00010{i:02d}"]))
    terms.append(("HP:0003000", "Renal cyst, bilateral", ["HP:0000118"]))  # has a comma: never a label
    return pd.DataFrame({"id": [t[0] for t in terms], "name": [t[1] for t in terms],
                         "definition": "", "synonyms": [[] for _ in terms], "parents": [t[2] for t in terms]})


def test_biomedical_vocabulary_is_an_antichain_of_phenotypes():
    vocab = gen.biomedical_vocabulary(_tiny_hpo(), seed=0)
    labels = set(vocab.attributes)
    assert len(labels) == 12  # one of each (label, focal label) pair
    assert not labels & {"All", "Phenotypic abnormality", "Autosomal dominant", "Mode of inheritance"}
    assert all(not (vocab.ancestors[a] & labels) for a in labels)
    data = gen.generate(vocab, n_queries=6, k=2, seed=0)
    gen.validate(data, vocab)
    assert data.query_texts[0].startswith("Which gene is annotated with ")
    assert " is annotated with " in data.doc_texts[0]


def test_validation_catches_an_ancestor_pair():
    anc = {"Focal seizure": frozenset({"Seizure"})}
    vocab = gen.Vocabulary("bio", ["Seizure", "Focal seizure", "Ataxia", "Tremor", "Myopia", "Anemia"],
                           gen._gene_symbols, "is annotated with", "Which gene is annotated with {}?", anc)
    data = gen.generate(vocab, n_queries=3, k=2, attributes_per_doc=3, seed=0)  # uses all 6 labels
    with pytest.raises(InputError, match="antichain"):
        gen.validate(data, vocab)


def test_vocabulary_rejects_attributes_that_would_not_parse():
    with pytest.raises(ValueError, match="would not parse"):
        gen.Vocabulary("x", ["Salt and Pepper"], gen._people, "likes", "Who likes {}?")


# --- free embedding -----------------------------------------------------------------------------

def test_pair_qrels_are_all_pairs():
    q = limit_free.pair_qrels(6)
    assert q.shape == (math.comb(6, 2), 6) and (q.sum(1) == 2).all()


def test_free_embedding_known_critical_points():
    # The LIMIT paper's free-embedding optimum for k = 2: about n = 10 at d = 4 and n = 19 at d = 6.
    # Margin: +/- 2 documents (this optimiser gives exactly 10 and 19 for seeds 0-4).
    assert 8 <= limit_free.critical_n(4, start=8, seed=0) <= 12
    assert 17 <= limit_free.critical_n(6, start=16, seed=0) <= 21


# --- params and report --------------------------------------------------------------------------

def test_params_have_a_limit_section_with_a_smoke_profile():
    raw = yaml.safe_load(open("params.yaml"))
    assert parse_params(raw).limit.generator.n_queries == 500
    raw["base"]["profile"] = "smoke"
    smoke = parse_params(raw).limit
    assert smoke.max_queries == 200 and smoke.generator.n_queries == 200


def test_report_states_what_numbers_do_not_mean():
    rows = {"toy": [{"retriever": "bm25", "family": "bm25", "dim": None, "recall_at_2": 99.0,
                     "recall_at_10": 100.0, "recall_at_20": 100.0, "recall_at_100": 100.0, "ndcg_at_10": 99.0},
                    {"retriever": "dense@8", "family": "dense", "dim": 8, "recall_at_2": 5.0,
                     "recall_at_10": 20.0, "recall_at_20": 40.0, "recall_at_100": 100.0, "ndcg_at_10": 9.0}]}
    curve = {2: 3, 3: 4, 4: 10, 5: 14, 6: 19}
    fit = limit_free.polynomial_fit(curve)
    text = limit_report.report_markdown(rows, {}, curve, fit, {"toy": (46, 1000)}, limit_report.tables(rows, {}))
    assert "zero-shot combinatorial recall at dimension d" in text
    assert "disputes" in text and "impossible" not in text
    assert "| 4 | 10 |" in text and "toy" in text
