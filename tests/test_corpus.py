import json

import pandas as pd
import pytest

from tasks.corpus import documents as corpus
from tasks.common.errors import InputError


def _terms():
    return pd.DataFrame({"id": ["HP:0000001", "HP:0001250"], "name": ["All", "Seizure"],
                         "definition": ["", "A sudden event."], "synonyms": [[], ["Fits"]],
                         "parents": [[], ["HP:0000001"]]})


def test_hpo_document_names_parents_and_synonyms():
    doc = corpus.hpo_documents(_terms(), None)[1]
    assert doc["doc_id"] == "hpo:HP:0001250"
    assert "Also called: Fits" in doc["text"] and "kind of All" in doc["text"]


def test_perturbation_documents_use_training_split_only():
    pairs = pd.DataFrame({
        "cell_line": "k562", "task": ["de", "de", "de", "dir"],
        "pert": ["A", "A", "B", "A"], "gene": ["X", "Y", "X", "X"],
        "label": [1, 1, 1, 1], "split": ["train", "train", "test", "train"]})
    docs = corpus.perturbation_documents(pairs)
    assert [d["doc_id"] for d in docs] == ["perturb:k562:A"]
    assert "X (up)" in docs[0]["text"] and "Y" in docs[0]["text"]


def test_near_duplicates_are_removed_but_distinct_documents_kept():
    base = "the protein family binds nucleotides and catalyses a reduction in many bacteria " * 3
    docs = pd.DataFrame({"doc_id": ["a", "b", "c"], "source": "x", "title": "",
                         "text": [base, base + " also", "an entirely different text about motifs " * 3]})
    kept, stats = corpus.deduplicate(docs, threshold=0.8, num_perm=128, shingle_words=3, seed=0)
    assert list(kept["doc_id"]) == ["a", "c"]
    assert stats == {"exact_duplicates": 0, "near_duplicates": 1}


def test_user_documents(tmp_path):
    (tmp_path / "notes.md").write_text("# Note\nCD3E marks T cells.")
    (tmp_path / "more.jsonl").write_text(json.dumps({"text": "GATA1 drives erythropoiesis."}) + "\n\n")
    docs = corpus.user_documents([str(tmp_path)])
    assert sorted(d["text"] for d in docs) == ["# Note CD3E marks T cells.", "GATA1 drives erythropoiesis."]


def test_user_documents_bad_jsonl_names_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"title": "no text"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl: line 2: not a JSON object with a 'text'"):
        corpus.user_documents([str(tmp_path)])


def test_hf_dataset_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(InputError, match="could not load from the Hugging Face hub"):
        corpus.hf_documents(["pubmed_qa:pqa_labeled"])
