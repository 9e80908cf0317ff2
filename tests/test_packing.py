import numpy as np
import pandas as pd
import pytest

from tasks.train import packing

from tasks.common import schemas
from tasks.common.errors import InputError
from tasks.lm.modeling import load_tokenizer
from tasks.common.storage import write_table
from tests.conftest import toy_texts


@pytest.mark.parametrize("lengths,block", [([5, 3, 9, 1], 4), ([7], 8), ([3, 3], 4), ([10, 20], 7)])
def test_packing_gives_full_blocks_and_loses_no_token(lengths, block):
    rng = np.random.default_rng(0)
    docs = [list(rng.integers(1, 100, n)) for n in lengths]
    blocks = packing.pack(docs, block, separator=0)
    assert blocks.shape[1] == block and blocks.dtype == np.int32
    stream = [t for d in docs for t in [*d, 0]]
    assert blocks.size >= len(stream) > blocks.size - block
    assert blocks.ravel()[:len(stream)].tolist() == stream
    # the last block is topped up from the start of the stream, never with padding
    assert blocks.ravel()[len(stream):].tolist() == stream[:blocks.size - len(stream)]


def test_tokenize_and_pack_counts_every_token(tiny_base):
    tok = load_tokenizer(tiny_base[0])
    texts = pd.Series(toy_texts(50))
    blocks, n_tokens = packing.tokenize_and_pack(texts, tok, block_size=64, seed=0)
    expected = sum(len(tok(t, add_special_tokens=False)["input_ids"]) + 1 for t in texts)
    assert n_tokens == expected and blocks.shape == (-(-expected // 64), 64)
    eot = tok.convert_tokens_to_ids("<|endoftext|>")
    assert (blocks.ravel()[:n_tokens] == eot).sum() == len(texts)


def test_heldout_is_stable_and_about_the_fraction():
    ids = pd.Series([f"doc{i}" for i in range(4000)])
    mask = packing.heldout_mask(ids, 0.1, seed=3)
    assert 0.08 < mask.mean() < 0.12
    more = pd.concat([ids, pd.Series(["new1", "new2"])], ignore_index=True)
    assert packing.heldout_mask(more, 0.1, seed=3)[:4000].equals(mask)
    assert not packing.heldout_mask(ids, 0.1, seed=4).equals(mask)


def test_gather_texts_joins_corpus_and_textify(tmp_path):
    docs = pd.DataFrame({"doc_id": ["a", "b"], "source": ["hpo", "omim"], "title": ["A", "B"],
                         "text": ["Seizure is a sign.", "Ataxia in OMIM:1."], "n_words": [4, 4]})
    write_table(docs, tmp_path / "documents.parquet", schemas.Documents)
    textify = tmp_path / "textify"
    cells = pd.DataFrame({"cell_id": ["c1"], "label": ["T cell"], "n_genes": [3], "total_counts": [9.0],
                          "cell_sentence": ["<cell>CD3D, CD8A, IL7R</cell>"]})
    write_table(cells, textify / "cells.parquet", schemas.CellSentences)
    texts = packing.gather_texts(tmp_path / "documents.parquet", textify, ["cells", "dna", "proteins"])
    assert texts["doc_id"].tolist() == ["corpus:a", "corpus:b", "cells:c1"]
    assert texts["source"].tolist() == ["corpus:hpo", "corpus:omim", "textify:cells"]
    assert "T cell" not in texts["text"].iloc[2]  # labels stay out of pretraining


def test_missing_corpus_is_a_one_line_input_error(tmp_path):
    with pytest.raises(InputError, match="documents.parquet: file: missing"):
        packing.gather_texts(tmp_path / "documents.parquet", tmp_path, [])


def test_weight_sources_copies_a_source_its_weight_on_average_and_names_an_unknown_one():
    docs = pd.DataFrame({"source": ["a"] * 2000 + ["b"] * 10 + ["c"] * 5,
                         "text": [f"t{i}" for i in range(2015)]})
    out = packing.weight_sources(docs, {"a": 0.5, "b": 3, "c": 0}, seed=0)
    counts = out["source"].value_counts()
    assert 900 < counts["a"] < 1100 and counts["b"] == 30 and "c" not in counts
    assert set(out.loc[out["source"] == "b", "text"].value_counts()) == {3}
    # no weights: the same table, in the same order (the stream is unchanged)
    assert packing.weight_sources(docs, {}, seed=0).equals(docs)
    with pytest.raises(KeyError, match="no pretraining source corpus:nope; sources: a, b, c"):
        packing.weight_sources(docs, {"corpus:nope": 2}, seed=0)
