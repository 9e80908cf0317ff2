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
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tasks.common import schemas
from tasks.common.storage import read_table

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


def heldout_mask(doc_ids: pd.Series, fraction: float, seed: int) -> pd.Series:
    """Stable per-document choice: a document stays held out whatever else is added to the corpus."""
    def unit(doc_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{doc_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return doc_ids.map(unit) < fraction


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
