"""Attention over padding-free rows chat by chat: each chat of a row attends to itself alone through
sdpa's causal kernel, instead of the whole row under a dense block-diagonal mask.

For a row of several chats (``position_ids`` restarting at 0 where a chat starts) transformers
builds a dense ``[row, row]`` mask, and CPU sdpa computes every pair of the row's positions: the
work grows with the square of the row (up to ``sft.max_length``, 1,536 tokens) while each chat needs
only the square of its own length (a few hundred tokens on the default profile), half of it with
the causal kernel. Here each chat of each row is cut out and goes through sdpa with
``is_causal=True``; the outputs are the dense mask's up to float rounding (``tests/test_chat_attention.py``),
and ``bench/sft_speed.py`` measures the step against the dense mask side by side.

Only for training on padding-free rows: a batch with padding (a 2-D ``attention_mask`` with zeros)
or a key/value cache (generation) is refused, never silently attended across.

>>> import torch
>>> q = k = v = torch.randn(1, 2, 5, 4)
>>> out, _ = chat_attention(None, q, k, v, None, position_ids=torch.tensor([[0, 1, 2, 0, 1]]))
>>> alone, _ = chat_attention(None, q[:, :, 3:], k[:, :, 3:], v[:, :, 3:], None,
...                           position_ids=torch.tensor([[0, 1]]))
>>> torch.allclose(out[:, 3:], alone)
True
>>> chat_starts(torch.tensor([0, 1, 2, 0, 1, 0]))
[0, 3, 5, 6]
"""
from __future__ import annotations

from typing import Any

NAME = "chat_sdpa"  # the name under transformers' attention and mask interfaces


def chat_starts(positions: Any) -> list[int]:
    """Where each chat of a row begins (a position that does not follow the one before, as
    transformers' ``find_packed_sequence_indices`` reads packed rows), then the row's length."""
    import torch

    follows = torch.zeros_like(positions, dtype=torch.bool)
    follows[1:] = positions[1:] == positions[:-1] + 1
    return (~follows).nonzero().flatten().tolist() + [int(positions.numel())]


def chat_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any,
                   dropout: float = 0.0, scaling: float | None = None, position_ids: Any = None,
                   **kwargs: Any) -> tuple[Any, None]:
    """transformers' attention-function contract: ``query`` ``[batch, heads, length, dim]``,
    ``key``/``value`` with ``heads / kv_heads`` fewer heads (GQA); returns ``[batch, length, heads,
    dim]``. ``attention_mask`` is always None here (:func:`no_padding_mask`)."""
    import torch
    import torch.nn.functional as F

    if query.shape[2] != key.shape[2]:
        raise ValueError("chat attention is for training on padding-free rows, not for generation "
                         "with a key/value cache")
    if position_ids is None:
        position_ids = torch.arange(query.shape[2], device=query.device)[None]
    groups = query.shape[1] // key.shape[1]
    if groups > 1:
        key, value = key.repeat_interleave(groups, 1), value.repeat_interleave(groups, 1)
    positions = position_ids.expand(query.shape[0], -1)
    rows = []
    for b in range(query.shape[0]):
        starts = chat_starts(positions[b])
        rows.append(torch.cat([F.scaled_dot_product_attention(
            query[b:b + 1, :, s:e], key[b:b + 1, :, s:e], value[b:b + 1, :, s:e],
            dropout_p=dropout, is_causal=True, scale=scaling)
            for s, e in zip(starts, starts[1:])], dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


def no_padding_mask(attention_mask: Any = None, **kwargs: Any) -> None:
    """The mask function under :data:`NAME`: none is built (chats come from ``position_ids``); a
    padding mask is refused, since attending by position alone would read the pad tokens."""
    if attention_mask is not None and not bool(attention_mask.all()):
        raise ValueError("chat attention takes padding-free rows, but this batch has padding "
                         "(sft.padding_free: false uses the model's own attention)")
    return None


def use_chat_attention(model: Any) -> bool:
    """Switch a model whose attention is sdpa (the CPU default) to :func:`chat_attention`; a model
    on another kernel (flash attention reads packed rows itself) is left as it is. Returns whether
    it switched. The choice is not saved with the model: ``config.json`` does not record it."""
    from transformers import AttentionInterface, AttentionMaskInterface

    if model.config._attn_implementation != "sdpa":
        return False
    AttentionInterface.register(NAME, chat_attention)
    AttentionMaskInterface.register(NAME, no_padding_mask)
    model.set_attn_implementation(NAME)
    return True
