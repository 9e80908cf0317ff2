"""LoRA for the training children (``sft.lora``, ``grpo.lora``): the peft config, and the model
saved merged, so every stage boundary carries a plain model folder that vLLM and transformers load.

Adapters sit on linear layers; the embedding is frozen. The tag tokens (``<cell>`` ... ``<answer>``)
are rows a pretrained model never trained (SmolLM2 gets them added, mean-initialised), and every
reply must emit ``<think>``/``<answer>``: so their rows train too (peft ``trainable_token_indices``,
which follows a tied output head), and merge into the embedding like the adapters. SFT trains
them; GRPO starts from a model that emits the tags and trains adapters alone (``tag_ids=[]``):
TRL's fused log-prob head reads the output head's weight and bias directly, which peft's
trainable-token wrapper does not expose.

>>> from tasks.common.params import Lora
>>> lora_config(Lora(), tag_ids=[5]) is None
True
>>> config = lora_config(Lora(enabled=True, r=8, alpha=16, target_modules=["q_proj", "v_proj"]), tag_ids=[7, 5])
>>> (config.r, config.lora_alpha, sorted(config.target_modules), config.trainable_token_indices)
(8, 16, ['q_proj', 'v_proj'], [5, 7])
>>> lora_config(Lora(enabled=True), tag_ids=[]).trainable_token_indices is None
True
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.common.params import Lora
from tasks.lm.modeling import TAG_TOKENS


def tag_token_ids(tokenizer: Any) -> list[int]:
    """The vocabulary ids of the tag tokens (:func:`tasks.lm.modeling.load_tokenizer` adds any missing)."""
    return sorted(tokenizer.convert_tokens_to_ids(TAG_TOKENS))


def lora_config(lora: Lora, tag_ids: list[int]) -> Any:
    """peft's ``LoraConfig`` for a causal LM with the ``tag_ids`` embedding rows trainable, or None
    when adapters are off (full fine-tuning)."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM",
                      trainable_token_indices=sorted(tag_ids) or None)


def save_trained(trainer: Any, out: Path, lora: Lora, is_main: bool) -> None:
    """The trained model and its tokenizer in ``out``: adapters merged into the weights, or (full
    fine-tuning) ``Trainer.save_model``, which also gathers sharded FSDP/ZeRO-3 weights."""
    if lora.enabled:
        merged = trainer.model.merge_and_unload()
        if is_main:
            merged.save_pretrained(out)
            trainer.processing_class.save_pretrained(out)
    else:
        trainer.save_model(str(out))
