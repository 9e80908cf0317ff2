"""LoRA for the training children (``sft.lora``, ``grpo.lora``): the peft config, and the model
saved merged, so every stage boundary carries a plain model folder that vLLM and transformers load.

>>> from tasks.common.params import Lora
>>> lora_config(Lora()) is None
True
>>> config = lora_config(Lora(enabled=True, r=8, alpha=16, target_modules=["q_proj", "v_proj"]))
>>> (config.r, config.lora_alpha, sorted(config.target_modules))
(8, 16, ['q_proj', 'v_proj'])
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.common.params import Lora


def lora_config(lora: Lora) -> Any:
    """peft's ``LoraConfig`` for a causal LM, or None when adapters are off (full fine-tuning)."""
    if not lora.enabled:
        return None
    from peft import LoraConfig

    return LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                      target_modules=lora.target_modules, task_type="CAUSAL_LM")


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
