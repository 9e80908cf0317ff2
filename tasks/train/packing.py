"""Pretraining text: BioCorpus documents and textified sequences, a held-out slice, packed blocks.

Every text becomes one document; documents are shuffled (seeded), tokenised, joined with
``<|endoftext|>`` after each, and cut into blocks of ``block_size`` tokens. The last block is
completed with tokens from the start of the stream, so every block is full and no token is lost.

>>> import numpy as np
>>> pack([[1, 2, 3], [4, 5]], block_size=4, separator=0)
array([[1, 2, 3, 0],
       [4, 5, 0, 1]], dtype=int32)
>>> heldout_mask(pd.Series(["a", "b", "c"]), 0.0, seed=0).tolist()
[False, False, False]
>>> docs = pd.DataFrame({"source": ["corpus:markers", "corpus:hpo"], "text": ["CD3E marks T cells", "x"]})
>>> weight_sources(docs, {"corpus:markers": 3, "corpus:hpo": 0}, seed=0)["text"].tolist()
['CD3E marks T cells', 'CD3E marks T cells', 'CD3E marks T cells']
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.common import schemas
from tasks.common.prompts import OMICS_SPAN, question_lines
from tasks.common.storage import read_table

KMER = 48  # characters: a shared stretch this long between a test input and a document is a leak


class LeakageError(AssertionError):
    """Text of a test problem's input is in the pretraining corpus."""


# table name -> (schema, id column, text column); the tables textify writes.
TEXTIFY = {
    "cells": (schemas.CellSentences, "cell_id", "cell_sentence"),
    "dna": (schemas.DnaWindows, "window_id", "text"),
    "proteins": (schemas.ProteinSequences, "protein_id", "text"),
}


def gather_texts(documents: Path, textify_dir: Path, tables: list[str]) -> pd.DataFrame:
    """One row per pretraining document: ``doc_id``, ``source``, ``text``.

    Cell sentences go in without their cell-type label: labels are what later stages ask about.
    A textify table that does not exist (textify not run) is skipped; the flow reports which.
    """
    docs = read_table(documents, schemas.Documents)
    frames = [pd.DataFrame({"doc_id": "corpus:" + docs["doc_id"], "source": "corpus:" + docs["source"],
                            "text": docs["text"]})]
    for name in tables:
        path = textify_dir / f"{name}.parquet"
        if not path.exists():
            continue
        schema, id_col, text_col = TEXTIFY[name]
        df = read_table(path, schema)
        frames.append(pd.DataFrame({"doc_id": f"{name}:" + df[id_col].astype(str),
                                    "source": f"textify:{name}", "text": df[text_col]}))
    return pd.concat(frames, ignore_index=True)


def held_out_inputs(problems: pd.DataFrame) -> tuple[set[str], list[str]]:
    """The ids (entities and source ids) and the omics texts of the test problems' questions
    (option lines excluded: distractors may be train entities)."""
    test = problems[problems["split"] == "test"]
    ids = {str(i) for row in test["source_ids"] for i in row}
    ids |= {e.split(":", 1)[1] for e in test["entity"]}
    spans = [m.group(2).strip() for prompt in test["prompt"] for line in question_lines(prompt)
             for m in OMICS_SPAN.finditer(line)]
    return ids, [s for s in spans if s]


def _kmers(text: str, k: int) -> set[str]:
    return {text[i:i + k] for i in range(0, max(len(text) - k + 1, 1))}


def overlapping(texts: pd.Series, spans: list[str], k: int = KMER) -> pd.Series:
    """Whether each text shares a ``k``-character stretch with a span (or holds a whole shorter
    span, such as a test cell's top genes at the start of its full sentence).

    >>> overlapping(pd.Series(["xxACGTACGTyy", "TTTT"]), ["ACGTACGT"], k=6).tolist()
    [True, False]
    """
    long = set().union(*[_kmers(s, k) for s in spans if len(s) >= k]) if spans else set()
    short = [s for s in spans if len(s) < k]
    return texts.map(lambda t: any(t[i:i + k] in long for i in range(0, max(len(t) - k + 1, 1)))
                     or any(s in t for s in short))


def drop_test_texts(texts: pd.DataFrame, problems: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """The pretraining documents without the test problems' inputs: textified records whose id a
    test problem uses, then any document sharing a stretch of text with a test input (a genome
    window overlapping a test coding sequence). Counts per source of what was dropped."""
    ids, spans = held_out_inputs(problems)
    textified = texts["source"].str.startswith("textify:")
    by_id = textified & texts["doc_id"].str.split(":", n=1).str[1].isin(ids)
    by_text = ~by_id & overlapping(texts["text"], spans)
    dropped = by_id | by_text
    report = {"by_id": texts.loc[by_id, "source"].value_counts().sort_index().to_dict(),
              "by_text": texts.loc[by_text, "source"].value_counts().sort_index().to_dict()}
    return texts[~dropped].reset_index(drop=True), report


def assert_no_test_text(texts: pd.DataFrame, problems: pd.DataFrame) -> None:
    """Raise :class:`LeakageError` naming a document that holds text of a test input."""
    _, spans = held_out_inputs(problems)
    leaked = overlapping(texts["text"], spans)
    if leaked.any():
        first = texts[leaked].iloc[0]
        raise LeakageError(f"{int(leaked.sum())} pretraining documents hold text of a test problem's "
                           f"input, e.g. {first['doc_id']!r}")


def heldout_mask(doc_ids: pd.Series, fraction: float, seed: int) -> pd.Series:
    """Stable per-document choice: a document stays held out whatever else is added to the corpus."""
    def unit(doc_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return doc_ids.map(unit) < fraction


def weight_sources(texts: pd.DataFrame, weights: dict[str, float], seed: int) -> pd.DataFrame:
    """Each document of a weighted source ``weight`` times on average: ``floor(weight)`` copies and
    one more with probability ``frac(weight)`` (seeded); 0 leaves the source out, an unnamed source
    keeps 1. With a token budget under one pass of the corpus, this sets the mix the model sees.
    """
    unknown = sorted(set(weights) - set(texts["source"]))
    if unknown:
        raise KeyError(f"no pretraining source {', '.join(unknown)}; sources: "
                       f"{', '.join(sorted(texts['source'].unique()))}")
    w = texts["source"].map(weights).fillna(1.0).to_numpy(dtype=float)
    copies = np.floor(w).astype(int) + (np.random.default_rng(seed).random(len(w)) < w % 1)
    return texts.loc[texts.index.repeat(copies)].reset_index(drop=True)


def pack(token_lists: list[list[int]], block_size: int, separator: int) -> np.ndarray:
    """Concatenate documents (each followed by ``separator``) into full blocks of ``block_size``."""
    lengths = np.fromiter((len(t) + 1 for t in token_lists), dtype=np.int64, count=len(token_lists))
    stream = np.empty(int(lengths.sum()), dtype=np.int32)
    pos = 0
    for tokens in token_lists:
        stream[pos:pos + len(tokens)] = tokens
        stream[pos + len(tokens)] = separator
        pos += len(tokens) + 1
    if len(stream) == 0:
        raise ValueError("nothing to pack: no documents")
    n_blocks = -(-len(stream) // block_size)
    # Wrapping the stream (np.resize repeats it) fills the last block instead of dropping its tokens.
    return np.resize(stream, n_blocks * block_size).reshape(n_blocks, block_size)


def tokenize_and_pack(texts: pd.Series, tokenizer: Any, block_size: int, seed: int,
                      batch: int = 2048) -> tuple[np.ndarray, int]:
    """Shuffled documents as packed blocks, and the number of real (unwrapped) tokens."""
    order = np.random.default_rng(seed).permutation(len(texts))
    texts = texts.iloc[order].tolist()
    token_lists: list[list[int]] = []
    for start in range(0, len(texts), batch):
        token_lists += tokenizer(texts[start:start + batch], add_special_tokens=False)["input_ids"]
    n_tokens = sum(len(t) + 1 for t in token_lists)
    return pack(token_lists, block_size, tokenizer.convert_tokens_to_ids("<|endoftext|>")), n_tokens


def save_blocks(blocks: np.ndarray, path: Path) -> str:
    """Write blocks as a plain .npy (no pickle); return their sha256, which keys checkpoints."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, blocks, allow_pickle=False)
    return hashlib.sha256(blocks.tobytes()).hexdigest()
