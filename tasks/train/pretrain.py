"""Continued causal-LM pretraining on packed blocks; runs under ``accelerate launch`` (see dispatch).

``python -m accelerate.commands.launch ... -m tasks.train.pretrain --config run.json`` where ``run.json``
(written through ``tasks/train/harness.py``) holds the ``pretrain`` params, ``gpus`` (0: CPU) and
the paths below. HF ``Trainer``
does the loop: it runs as one or many processes (CPU/gloo or GPUs/NCCL, DeepSpeed/FSDP through the
accelerate config) and resumes from the newest checkpoint in ``checkpoint_dir`` when one exists.

Outputs (main process only): the model and tokenizer in ``output_dir``; ``metrics_path`` with
held-out loss/perplexity before and after, steps and tokens; ``curve_path`` with the log history.
Loss curves go live to the stage's MLflow run as ``pretrain/<phase>/<metric>`` (``loss``,
``eval_loss``, ``eval_perplexity``, ``learning_rate``...; phase ``train``, or ``drills`` for the
drill phase: run.json's ``phase``) when ``MLFLOW_RUN_ID`` is set
(:class:`tasks.train.mlflow_log.MlflowLog`).

>>> perplexity(0.0)
1.0
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Trainer, TrainingArguments

from tasks.lm.modeling import load_model, load_tokenizer
from tasks.common.params import Pretrain
from tasks.train.mlflow_log import MlflowLog

BEFORE = "eval_before.json"


def perplexity(loss: float) -> float:
    return math.exp(min(loss, 50.0))  # capped: a diverged run reports a huge number, not inf


class Blocks(torch.utils.data.Dataset):
    """Packed token blocks from a .npy file; every block is its own label (shifted in the model)."""

    def __init__(self, path: str | Path, limit: int | None = None):
        self.blocks = np.load(path, mmap_mode="r", allow_pickle=False)
        self.n = len(self.blocks) if limit is None else min(limit, len(self.blocks))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(np.array(self.blocks[i], dtype=np.int64))
        return {"input_ids": ids, "labels": ids.clone()}


class PretrainLog(MlflowLog):
    """The stage's live curve (``pretrain/<phase>/<metric>``), with the held-out perplexity."""

    def __init__(self, phase: str = "train") -> None:
        super().__init__("pretrain", phase)

    def values(self, entry: dict[str, Any]) -> dict[str, float]:
        values = super().values(entry)
        if "eval_loss" in entry:
            values[f"{self.prefix}/eval_perplexity"] = perplexity(entry["eval_loss"])
        return values


def last_complete_checkpoint(folder: Path) -> str | None:
    """Newest checkpoint whose trainer state was written (Trainer writes that file last), so a
    run killed in the middle of saving resumes from the checkpoint before."""
    if not folder.is_dir():
        return None
    done = [d for d in folder.glob("checkpoint-*") if (d / "trainer_state.json").is_file()]
    return str(max(done, key=lambda d: int(d.name.rsplit("-", 1)[1]))) if done else None


def training_arguments(p: Pretrain, checkpoint_dir: str, max_steps: int, seed: int,
                       gpus: int) -> TrainingArguments:
    return TrainingArguments(
        output_dir=checkpoint_dir, max_steps=max_steps, seed=seed, data_seed=seed,
        full_determinism=True,  # deterministic kernels: the same commit trains the same weights
        per_device_train_batch_size=p.batch_size, per_device_eval_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum, learning_rate=p.learning_rate,
        lr_scheduler_type=p.lr_scheduler, warmup_steps=p.warmup_ratio, weight_decay=p.weight_decay,
        max_grad_norm=p.max_grad_norm, bf16=p.precision == "bf16", fp16=p.precision == "fp16",
        use_cpu=gpus == 0, gradient_checkpointing=p.gradient_checkpointing,
        logging_steps=p.logging_steps, eval_strategy="steps", eval_steps=p.eval_steps,
        save_strategy="steps", save_steps=p.save_steps, save_total_limit=2,
        report_to="none", dataloader_num_workers=0, disable_tqdm=False, ddp_find_unused_parameters=False)


def train(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Train as one process of the launch; returns the metrics on the main process, else None."""
    from accelerate import PartialState

    p = Pretrain.model_validate(cfg["params"])
    # cpu=True makes a torchrun-started group of CPU processes one gloo group (MULTI_CPU)
    state = PartialState(cpu=cfg["gpus"] == 0)
    tokenizer = load_tokenizer(cfg["base_dir"])
    model = load_model(cfg["base_dir"], tokenizer)
    train_set = Blocks(cfg["train_blocks"])
    heldout = Blocks(cfg["heldout_blocks"], limit=p.max_eval_blocks)
    tokens_per_step = p.block_size * p.batch_size * p.grad_accum * state.num_processes
    max_steps = max(1, math.ceil(p.token_budget / tokens_per_step))

    checkpoint_dir = Path(cfg["checkpoint_dir"])
    args = training_arguments(p, str(checkpoint_dir), max_steps, cfg["seed"], cfg["gpus"])
    trainer = Trainer(model=model, args=args, train_dataset=train_set, eval_dataset=heldout,
                      processing_class=tokenizer, callbacks=[PretrainLog(cfg.get("phase", "train"))])
    last = last_complete_checkpoint(checkpoint_dir)
    before_file = checkpoint_dir / BEFORE
    if last and before_file.exists():
        before = json.loads(before_file.read_text())
    else:
        before = trainer.evaluate()  # every process takes part; only the main one writes
        if state.is_main_process:
            checkpoint_dir.mkdir(parents=True, exist_ok=True)
            before_file.write_text(json.dumps(before))
    result = trainer.train(resume_from_checkpoint=last)
    after = trainer.evaluate()
    trainer.save_model(cfg["output_dir"])
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    # Trainer pickles its arguments next to the weights; no pickles cross a stage boundary.
    Path(cfg["output_dir"], "training_args.bin").unlink(missing_ok=True)
    metrics = {
        "eval_loss_before": before["eval_loss"], "perplexity_before": perplexity(before["eval_loss"]),
        "eval_loss_after": after["eval_loss"], "perplexity_after": perplexity(after["eval_loss"]),
        "train_loss": result.training_loss, "steps": trainer.state.global_step,
        "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0,
        "tokens_per_step": tokens_per_step, "tokens_trained": trainer.state.global_step * tokens_per_step,
        "processes": state.num_processes, "train_seconds": result.metrics.get("train_runtime"),
        "heldout_blocks": len(heldout), "train_blocks": len(train_set),
    }
    history = [{"step": 0, "eval_loss": before["eval_loss"]}] + trainer.state.log_history
    Path(cfg["curve_path"]).write_text(json.dumps(history))
    Path(cfg["metrics_path"]).write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run.json written by flows/pretrain.py")
    cfg = json.loads(Path(parser.parse_args(argv).config).read_text())
    train(cfg)


if __name__ == "__main__":
    main()
