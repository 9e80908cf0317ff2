"""Retrievers, metrics and BEIR loading (tasks/limit/retrieval.py, limit_metrics.py, limit_beir.py)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tasks.limit import retrieval
from tasks.cli import app
from tasks.common.errors import InputError
from tasks.limit.beir import BeirSet, load_beir, write_beir
from tasks.limit.metrics import ndcg_at_k, recall_at_k, score_run

LIMIT_SMALL = Path(__file__).resolve().parent.parent / "data" / "raw" / "limit-small"


# --- metrics ------------------------------------------------------------------------------------

def test_recall_is_fraction_of_relevant_found_averaged_over_queries():
    ranked = [["a", "x", "b", "y"], ["z", "c", "w", "d"]]
    relevant = [{"a": 1, "b": 1}, {"c": 1, "d": 1}]
    assert recall_at_k(ranked, relevant, 1) == pytest.approx((0.5 + 0.0) / 2)
    assert recall_at_k(ranked, relevant, 2) == pytest.approx((0.5 + 0.5) / 2)
    assert recall_at_k(ranked, relevant, 3) == pytest.approx((1.0 + 0.5) / 2)
    assert recall_at_k(ranked, relevant, 4) == 1.0


def test_ndcg_known_values():
    # binary: hits at ranks 1 and 3 -> DCG 1 + 1/log2(4) = 1.5, ideal 1 + 1/log2(3)
    assert ndcg_at_k([["a", "x", "b"]], [{"a": 1, "b": 1}]) == pytest.approx(1.5 / (1 + 1 / np.log2(3)))
    # graded: the gain-2 document at rank 2 and gain-1 at rank 1 versus the ideal order
    dcg, idcg = 1 + 2 / np.log2(3), 2 + 1 / np.log2(3)
    assert ndcg_at_k([["b", "a"]], [{"a": 2, "b": 1}]) == pytest.approx(dcg / idcg)
    # only the top 10 count; a score-0 qrel is judged non-relevant
    assert ndcg_at_k([[f"x{i}" for i in range(10)] + ["a"]], [{"a": 1, "x0": 0}]) == 0.0
    assert score_run([["a", "b"]], [{"a": 1, "b": 1}])["ndcg_at_10"] == 100.0


# --- fusion, truncation, dense and late interaction with stand-in encoders ------------------------

def test_rrf_on_hand_made_rankings():
    ids, scores = retrieval.rrf([np.array([[0, 1, 2]]), np.array([[1, 2, 0]])], k=3, rrf_k=60)
    assert ids.tolist() == [[1, 0, 2]]
    assert scores[0].tolist() == pytest.approx([1 / 61 + 1 / 62, 1 / 61 + 1 / 63, 1 / 63 + 1 / 62])
    # a document missing from a shallow ranking gets nothing from it
    ids, scores = retrieval.rrf([np.array([[3, 0]]), np.array([[0, 1]])], k=4, rrf_k=1)
    assert ids[0, 0] == 0 and scores[0, 0] == pytest.approx(1 / 3 + 1 / 2)


def test_truncation_renormalises_and_keeps_the_prefix():
    emb = np.random.default_rng(0).normal(size=(5, 16))
    cut = retrieval.truncate(emb, 4)
    assert cut.shape == (5, 4)
    assert np.linalg.norm(cut, axis=1) == pytest.approx(np.ones(5), abs=1e-6)
    assert cut == pytest.approx(emb[:, :4] / np.linalg.norm(emb[:, :4], axis=1, keepdims=True), abs=1e-6)
    with pytest.raises(ValueError, match="exceeds"):
        retrieval.truncate(emb, 17)


class FakeEncoder:
    """Fixed vectors per text: enough to test ranking logic without a model."""

    dimension = 3

    def __init__(self, vectors: dict[str, list[float]], tokens: dict[str, list[list[float]]] | None = None):
        self.vectors, self._tokens = vectors, tokens or {}

    def sentences(self, texts):
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)

    def tokens(self, texts):
        return [np.array(self._tokens[t], dtype=np.float32) for t in texts]


def test_dense_ranks_by_cosine_of_truncated_vectors():
    enc = FakeEncoder({"d0": [1, 0, 5], "d1": [0, 1, -5], "q": [0.2, 1, -9]})
    dense_full, dense_2 = retrieval.Dense(enc), retrieval.Dense(enc, dim=2)
    for r in (dense_full, dense_2):
        r.index(["d0", "d1"])
    assert dense_full.search(["q"], 2)[0].tolist() == [[1, 0]]
    ids, scores = dense_2.search(["q"], 2)
    assert ids.tolist() == [[1, 0]] and scores[0, 0] == pytest.approx(1 / np.sqrt(1.04))


def test_late_interaction_is_sum_of_maxsim():
    enc = FakeEncoder({}, tokens={
        "d0": [[1, 0], [0, 1]],          # covers both query tokens
        "d1": [[1, 0], [1, 0], [1, 0]],  # covers only the first
        "q": [[1, 0], [0, 1]],
    })
    late = retrieval.LateInteraction(enc)
    late.index(["d0", "d1"])
    ids, scores = late.search(["q"], 2)
    assert ids.tolist() == [[0, 1]]
    assert scores[0].tolist() == pytest.approx([2.0, 1.0])


def test_rerank_reorders_head_and_keeps_tail():
    class ShortestFirst:
        def predict(self, pairs, show_progress_bar=False):
            return [-len(doc) for _, doc in pairs]

    docs = ["apple pie recipe long text", "apple", "apple tart", "banana"]
    rr = retrieval.Rerank(retrieval.BM25(), ShortestFirst(), depth=3)
    rr.index(docs)
    ids, _ = rr.search(["apple"], 4)
    assert ids[0, :3].tolist() == [1, 2, 0] and ids.shape == (1, 4)


def test_rerank_without_model_is_skipped_with_a_message(caplog):
    with caplog.at_level(logging.WARNING):
        assert retrieval.load_cross_encoder(None) is None
        assert retrieval.load_cross_encoder("/no/such/cross-encoder") is None
    assert "no cross-encoder configured" in caplog.text
    assert "/no/such/cross-encoder" in caplog.text and "could not be loaded" in caplog.text


# --- BM25 on LIMIT-small ------------------------------------------------------------------------

def test_bm25_reproduces_published_limit_small_recall():
    data = load_beir(LIMIT_SMALL)
    bm25 = retrieval.BM25()
    bm25.index(data.doc_texts)
    ids, _ = bm25.search(data.query_texts, 100)
    ranked = [[data.doc_ids[j] for j in row] for row in ids]
    metrics = score_run(ranked, [data.qrels[q] for q in data.query_ids])
    assert abs(metrics["recall_at_2"] - 97.8) <= 1.0  # published BM25 recall@2 on LIMIT-small
    assert metrics["recall_at_10"] == 100.0 and metrics["recall_at_20"] == 100.0


# --- BEIR folders -------------------------------------------------------------------------------

def _toy() -> BeirSet:
    return BeirSet(["d1", "d2", "d3"], ["alpha beta", "beta gamma", "gamma delta"], ["q1", "q2"],
                   ["alpha", "delta"], {"q1": {"d1": 1}, "q2": {"d3": 2, "d2": 0}})


def test_beir_tsv_and_jsonl_qrels_load_the_same(tmp_path):
    write_beir(_toy(), tmp_path / "jsonl")
    from_jsonl = load_beir(tmp_path / "jsonl")
    tsv = tmp_path / "tsv"
    tsv.mkdir()
    for name in ("corpus.jsonl", "queries.jsonl"):
        (tsv / name).write_text((tmp_path / "jsonl" / name).read_text())
    (tsv / "qrels").mkdir()
    (tsv / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t2\nq2\td2\t0\n")
    from_tsv = load_beir(tsv)
    assert from_tsv == from_jsonl
    assert from_tsv.relevant_ids("q2") == {"d3"}  # score 0 is judged non-relevant


def _bad_folder(tmp_path: Path) -> Path:
    write_beir(_toy(), tmp_path / "bad")
    return tmp_path / "bad"


def test_missing_file_is_an_input_error(tmp_path):
    folder = _bad_folder(tmp_path)
    (folder / "queries.jsonl").unlink()
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.file.endswith("queries.jsonl") and "missing" in err.value.problem


def test_query_without_qrels_is_an_input_error(tmp_path):
    folder = _bad_folder(tmp_path)
    with (folder / "queries.jsonl").open("a") as fh:
        fh.write(json.dumps({"_id": "q3", "text": "epsilon"}) + "\n")
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.file.endswith("qrels.jsonl") and "q3" in err.value.record
    assert len(load_beir(folder, allow_unjudged=True).query_ids) == 2


def test_qrel_naming_unknown_document_is_an_input_error(tmp_path):
    folder = _bad_folder(tmp_path)
    with (folder / "qrels.jsonl").open("a") as fh:
        fh.write(json.dumps({"query-id": "q1", "corpus-id": "nope", "score": 1}) + "\n")
    with pytest.raises(InputError) as err:
        load_beir(folder)
    assert err.value.file.endswith("qrels.jsonl") and err.value.record == "line 4"
    assert "'nope'" in err.value.problem


def test_malformed_line_names_the_line(tmp_path):
    folder = _bad_folder(tmp_path)
    with (folder / "corpus.jsonl").open("a") as fh:
        fh.write("{not json\n")
    with pytest.raises(InputError, match=r"corpus.jsonl: line 4: not JSON"):
        load_beir(folder)


# --- CLI ----------------------------------------------------------------------------------------

def test_cli_eval_writes_json_and_table(tmp_path):
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["limit", "eval", str(LIMIT_SMALL), "--out", str(out),
                                      "--retriever", "bm25", "--table", str(tmp_path / "t.md")])
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["queries"] == 1000 and set(metrics["results"]) == {"bm25"}
    assert "| bm25 |" in (tmp_path / "t.md").read_text()
    assert "1000 queries; retrievers bm25" in result.output and f"wrote {out}" in result.output  # progress, paths


def test_cli_eval_bad_folder_exits_2_with_one_line(tmp_path):
    result = CliRunner().invoke(app, ["limit", "eval", str(tmp_path), "--out", str(tmp_path / "m.json"),
                                      "--retriever", "bm25"])
    assert result.exit_code == 2
    assert "corpus.jsonl: file: missing" in result.output


# --- encoder cache (loads the bundled MiniLM) ---------------------------------------------------

def test_encoder_cache_avoids_re_encoding(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    texts = ["Ann likes Tapirs.", "Bo likes Limes and Figs."]
    first = retrieval.Encoder(cache_dir=tmp_path)
    vectors, tokens = first.sentences(texts), first.tokens(texts)
    assert vectors.shape == (2, 384) and tokens[1].shape[1] == 384

    class NoModel:
        def encode(self, *args, **kwargs):
            raise AssertionError("re-encoded a cached text")

    second = retrieval.Encoder(cache_dir=tmp_path)
    second._model = NoModel()
    assert second.sentences(texts) == pytest.approx(vectors)
    assert all(np.allclose(a, b) for a, b in zip(second.tokens(texts), tokens))
