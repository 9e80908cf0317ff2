"""What one SFT phase trains on: chats that fit ``sft.max_length`` whole, balanced across families.

Nothing is cut silently. A chat longer than ``max_length`` tokens would lose its end, which is
where the answer is, so it is never trained on: it is dropped and counted per family
(``sft.on_overlength: drop``) or the stage stops naming the first one (``error``).

Balance: the annotate stage yields very unequal families (800 PerturbQA chats, under 200 cell-type
ones), and a model trained on the raw mix learns the commonest answer word. With
``chats_per_family`` each family contributes that many chats per epoch: larger families are
subsampled (a fresh seeded subset each epoch, so over several epochs most chats are seen), smaller
ones repeated. A phase's ``tokens_per_family`` also caps what a family costs an epoch: a family of
long chats (a 200-gene cell sentence and a DNA window, ~950 tokens) contributes
``tokens_per_family // its mean chat length`` chats when that is fewer, so a few long-prompt
families do not take most of the epoch's compute. A phase's ``family_chats`` sets a named family's
count outright: more presentations for a family the model underfits, fewer for one whose test
score no amount of training moves.

>>> df = pd.DataFrame({"family": ["a"] * 4 + ["b"], "n_tokens": [10, 10, 10, 99, 10]})
>>> kept, stats = fit(df, max_length=50, on_overlength="drop")
>>> len(kept), stats["dropped_overlength"], stats["dropped_per_family"]
(4, 1, {'a': 1})
>>> [len(e) for e in balanced_epochs(kept, 2, per_family=2, seed=0)]
[4, 4]
>>> sorted(kept.loc[balanced_epochs(kept, 1, per_family=2, seed=0)[0], "family"])
['a', 'a', 'b', 'b']
>>> per_family_counts(kept, per_family=2, tokens_per_family=15)   # 10-token chats: 1 fits
{'a': 1, 'b': 1}
>>> per_family_counts(kept, per_family=2, family_chats={"b": 5})
{'a': 2, 'b': 5}
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


class OverlengthError(ValueError):
    """A chat longer than ``sft.max_length`` with ``on_overlength: error``."""


class UnknownFamilyError(ValueError):
    """A phase's ``family_chats`` names a family its data does not have."""


def chat_lengths(messages: Any, tokenizer: Any) -> list[int]:
    """Tokens of each whole chat as the trainer renders it (the tokenizer's chat template)."""
    return [len(tokenizer.apply_chat_template([{"role": str(m["role"]), "content": str(m["content"])}
                                               for m in turns], tokenize=True,
                                              return_dict=False))
            for turns in messages]


def reply_lengths(messages: Any, tokenizer: Any) -> list[int]:
    """Tokens of each chat's assistant reply alone: what generation must have room for."""
    return [len(tokenizer(str(list(turns)[-1]["content"]), add_special_tokens=False)["input_ids"])
            for turns in messages]


def fit(chats: pd.DataFrame, max_length: int, on_overlength: str) -> tuple[pd.DataFrame, dict]:
    """The chats of ``n_tokens <= max_length``; the others dropped and counted, or an error."""
    over = chats["n_tokens"] > max_length
    if over.any() and on_overlength == "error":
        first = chats[over].iloc[0]
        raise OverlengthError(
            f"chat {first.get('id', first.name)!r} ({first['family']}) has {int(first['n_tokens'])} "
            f"tokens > sft.max_length {max_length}; {int(over.sum())} chats are too long (raise "
            f"max_length, or set sft.on_overlength: drop)")
    lengths = chats["n_tokens"]
    stats = {"chats_in_data": len(chats), "dropped_overlength": int(over.sum()),
             "dropped_per_family": {str(k): int(v) for k, v in
                                    chats[over].groupby("family").size().items()},
             "max_length": max_length,
             "tokens_p50": float(lengths.quantile(0.5)) if len(chats) else 0.0,
             "tokens_p99": float(lengths.quantile(0.99)) if len(chats) else 0.0,
             "tokens_max": int(lengths.max()) if len(chats) else 0}
    if "reply_tokens" in chats:
        stats["reply_tokens_max"] = int(chats["reply_tokens"].max()) if len(chats) else 0
    return chats[~over].reset_index(drop=True), stats


def per_family_counts(chats: pd.DataFrame, per_family: int | None,
                      tokens_per_family: int | None = None,
                      family_chats: dict[str, int] | None = None) -> dict[str, int]:
    """Chats each family contributes per epoch: ``per_family`` (null: all of its chats), at most
    ``tokens_per_family // the family's mean chat length`` (and at least one) when that is set;
    a family named in ``family_chats`` contributes that many instead. Naming a family the chats do
    not have is an error: a misspelt name would otherwise change nothing, silently."""
    family_chats = family_chats or {}
    present = sorted(chats["family"].astype(str).unique())
    unknown = sorted(set(family_chats) - set(present))
    if unknown:
        raise UnknownFamilyError(f"family_chats names {unknown}, which have no chat in this phase's "
                                 f"data (its families: {present})")
    return {str(f): family_chats.get(str(f)) or _family_count(g, per_family, tokens_per_family)
            for f, g in chats.groupby("family", sort=True)}


def _family_count(family_chats: pd.DataFrame, per_family: int | None, tokens_per_family: int | None) -> int:
    n = per_family or len(family_chats)
    if tokens_per_family:
        n = min(n, max(1, int(tokens_per_family // family_chats["n_tokens"].mean())))
    return n


def balanced_epochs(chats: pd.DataFrame, epochs: int, per_family: int | None, seed: int,
                    tokens_per_family: int | None = None,
                    family_chats: dict[str, int] | None = None) -> list[list[int]]:
    """Row indices of ``chats`` per epoch, :func:`per_family_counts` of every family, shuffled."""
    rng = np.random.default_rng(seed)
    counts = per_family_counts(chats, per_family, tokens_per_family, family_chats)
    groups = [(counts[str(f)], g.index.to_numpy()) for f, g in chats.groupby("family", sort=True)]
    out = []
    for _ in range(epochs):
        picked = []
        for n, ix in groups:
            whole, rest = divmod(n, len(ix))
            picked += list(np.tile(ix, whole)) + list(rng.choice(ix, rest, replace=False))
        out.append([int(i) for i in rng.permutation(picked)])
    return out


def training_rows(chats: pd.DataFrame, epochs: int, per_family: int | None, seed: int,
                  tokens_per_family: int | None = None,
                  family_chats: dict[str, int] | None = None) -> pd.DataFrame:
    """The phase's whole training stream: ``epochs`` passes, balanced when ``per_family``,
    ``tokens_per_family`` or ``family_chats`` is set."""
    if per_family or tokens_per_family or family_chats:
        order = [i for epoch in balanced_epochs(chats, epochs, per_family, seed, tokens_per_family,
                                                family_chats)
                 for i in epoch]
    else:
        rng = np.random.default_rng(seed)
        order = [int(i) for _ in range(epochs) for i in rng.permutation(len(chats))]
    return chats.iloc[order].reset_index(drop=True)


def family_counts(rows: pd.DataFrame) -> dict[str, int]:
    return {str(k): int(v) for k, v in rows.groupby("family").size().items()}


def row_groups(lengths: list[int], capacity: int) -> list[list[int]]:
    """Indices of a batch's chats grouped into rows of at most ``capacity`` tokens, first-fit
    decreasing (a chat longer than ``capacity`` gets a row of its own).

    >>> row_groups([900, 300, 700, 500, 100], 1000)
    [[0, 4], [2, 1], [3]]
    """
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        slot = next((r for r, free in enumerate(room) if free >= lengths[i]), None)
        if slot is None:
            rows.append([]), room.append(capacity)
            slot = len(rows) - 1
        rows[slot].append(i)
        room[slot] -= lengths[i]
    return rows


class PackedRows:
    """A padding-free collator (TRL's, ``padding_free=True``) that packs a batch into several rows
    of at most ``capacity`` tokens instead of one: attention (dense masks on CPU and most GPUs)
    costs the square of a row's length, so eight chats in one 5,000-token row cost several times
    what three rows of 1,536 do. Rows are padded to the longest with a segment of their own
    (positions from 0, labels -100), which attends to itself only and carries no loss; the loss is
    each chat's alone either way (``tests/test_sft.py``)."""

    def __init__(self, collate: Any, capacity: int, pad_token_id: int):
        self.collate, self.capacity, self.pad_token_id = collate, capacity, pad_token_id

    def __call__(self, examples: list[dict]) -> dict[str, Any]:
        import torch

        groups = row_groups([len(e["input_ids"]) for e in examples], self.capacity)
        parts = [self.collate([examples[i] for i in group]) for group in groups]
        width = max(part["input_ids"].shape[1] for part in parts)
        fill = {"input_ids": self.pad_token_id, "labels": -100}
        batch = {}
        # TRL's flash-attention keys (cu_seq_lens_*, seq_idx) describe one row; the loss drops them
        for key in ("input_ids", "labels", "position_ids"):
            rows = []
            for part in parts:
                value, short = part[key], width - part[key].shape[1]
                if short:
                    pad = (torch.arange(short, dtype=value.dtype)[None] if key == "position_ids"
                           else torch.full((1, short), fill[key], dtype=value.dtype))
                    value = torch.cat([value, pad], dim=1)
                rows.append(value)
            batch[key] = torch.cat(rows)
        return batch
