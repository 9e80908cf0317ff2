"""Supervised fine-tuning with TRL's SFTTrainer; runs under ``accelerate launch`` (see dispatch).

``python -m accelerate.commands.launch ... -m tasks.train.sft --config run.json`` where ``run.json``
(written through ``tasks/train/harness.py``) holds the ``sft`` params, ``gpus`` (0: CPU), the
starting model and a work folder. The phases run one after the other, each starting from the
model the previous one saved: ``instruction`` (instruction-alignment chats), ``answer`` (optional:
the answer-only chats, many short epochs) then ``cold_start`` (verified gold reasoning traces).

* What is trained: :func:`phase_rows` (:mod:`tasks.train.sft_data`): ``epochs`` passes over the
  chats that fit ``max_length`` whole, balanced across families; chats that would be cut are
  dropped and counted (or stop the stage), so no answer is ever truncated. Batches are taken in
  that stream's seeded order, so each mixes families. (Grouping by length, which pads less, puts
  one family in each batch, and the model then learnt each family's commonest answer whatever
  the input: cell_type 0.26 on test against 0.40 with mixed batches, same steps.) Padding is
  avoided instead by ``sft.padding_free``: a batch's chats end to end in one row, each chat
  attending only to itself through sdpa's causal kernel (:mod:`tasks.train.chat_attention`; under
  another kernel's dense mask, in rows of at most ``max_length`` tokens), the loss unchanged.

* Loss on assistant tokens only: the ChatML template of ``tasks/lm/modeling.py`` wraps assistant
  content in ``{% generation %}``, and ``assistant_only_loss=True`` turns that into the label mask.
  :func:`loss_mask_stats` checks the mask on the prepared data: no chat without trained tokens, and
  prompt tokens never trained.
* Resume: each phase checkpoints into ``<work>/<phase>/checkpoints``; a rerun after a kill resumes
  from the newest complete checkpoint, and a phase whose model was saved is not trained again.
* The loss (:func:`sft_trainer`): by default each chat's mean token loss, averaged over chats
  (``sft.loss_average: chat``), so a 100-token protein answer does not outweigh a yes/no; computed
  from the logits, not by TRL's fused LM-head kernel (half the speed on CPU, ``bench/sft_speed.py``),
  and only at the positions that predict a trained token (:func:`trained_positions`).
* LoRA (``sft.lora.enabled``): peft adapters, merged into the weights before saving.
* MLflow: the loss curve of each phase goes live to the stage's run (``MLFLOW_RUN_ID``) as
  ``sft/<phase>/<metric>`` (``sft/cold_start/loss``), through
  :class:`tasks.train.mlflow_log.MlflowLog`; HF's own reporting is off (``report_to="none"``).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.lm.modeling import load_model, load_tokenizer
from tasks.common.params import Sft, SftPhase
from tasks.train import sft_data
from tasks.train.chat_attention import use_chat_attention
from tasks.train.lora import lora_config, save_trained, tag_token_ids
from tasks.train.mlflow_log import MlflowLog
from tasks.train.pretrain import last_complete_checkpoint

PHASES = ("instruction", "answer", "cold_start")
DONE = "phase.json"


def phases(p: Sft) -> dict[str, SftPhase]:
    """The phases that train, in order: those set and with ``epochs`` > 0."""
    return {name: phase for name in PHASES if (phase := getattr(p, name)) is not None and phase.epochs}


def trained_positions(trained: Any) -> Any:
    """The positions whose next token is trained in any row of the batch (``trained``: a boolean
    [batch, length] mask of the tokens the loss reads): the only positions the loss needs logits at
    (``logits_to_keep``). An answer-only chat trains ~10 of its ~300 tokens and prompts are most of
    an offline GRPO trace, while the LM head over a 4,096-token vocabulary is a third of the tiny
    model's compute. SFT reads the mask off its labels, offline GRPO (``tasks.train.multitrace``)
    off its completion mask: one rule for both.

    >>> import torch
    >>> trained_positions(torch.tensor([[-100, -100, 5, 6], [-100, 7, -100, -100]]) != -100).tolist()
    [0, 1, 2]
    """
    return trained[:, 1:].any(0).nonzero().squeeze(1)


def chat_mean_loss(logits: Any, labels: Any, position_ids: Any = None, positions: Any = None) -> Any:
    """Each chat's mean loss over its trained tokens (labels != -100), averaged over the chats that
    have any: every chat weighs the same, however long its reply. A row is one chat, or, padding-free
    (``position_ids`` given), several chats one after the other, each starting at position 0.
    ``positions``: the sequence positions ``logits`` holds (the model ran with ``logits_to_keep``
    set to :func:`trained_positions`); default every position.

    >>> import torch
    >>> logits = torch.zeros(2, 4, 3)  # uniform over 3 tokens: every token's loss is log 3
    >>> labels = torch.tensor([[-100, 1, 2, 0], [-100, -100, -100, 1]])
    >>> round(float(chat_mean_loss(logits, labels)), 4) == round(float(torch.log(torch.tensor(3.0))), 4)
    True
    >>> logits = torch.zeros(1, 5, 3); logits[0, 0, 1] = 9.0  # the first chat's token is easy
    >>> labels, positions = torch.tensor([[-100, 1, -100, 2, 0]]), torch.tensor([[0, 1, 0, 1, 2]])
    >>> per_chat = [float(chat_mean_loss(logits[:, :2], labels[:, :2])),
    ...             float(chat_mean_loss(logits[:, 2:], labels[:, 2:]))]
    >>> abs(float(chat_mean_loss(logits, labels, positions)) - sum(per_chat) / 2) < 1e-6
    True
    >>> kept = trained_positions(labels != -100)  # the same loss from the logits of the trained positions only
    >>> float(chat_mean_loss(logits[:, kept], labels, positions, kept)) == float(chat_mean_loss(logits, labels, positions))
    True
    """
    import torch

    if positions is None:
        logits, positions = logits[:, :-1], torch.arange(labels.size(1) - 1, device=labels.device)
    shift_logits, shift_labels = logits.float(), labels[:, 1:][:, positions]
    mask = shift_labels != -100
    per_token = torch.nn.functional.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)), shift_labels.clamp(min=0).reshape(-1),
        reduction="none").view_as(shift_labels) * mask
    if position_ids is None:  # one chat per row
        chat = torch.arange(labels.size(0), device=labels.device)[:, None].expand_as(shift_labels)
    else:  # the chat a target token belongs to: the chats started up to its position
        starts = (position_ids == 0).long()
        starts[:, 0] = 1  # every row opens a chat (a row-continued chat cannot occur: rows are whole)
        chat = (starts.flatten().cumsum(0) - 1).view_as(position_ids)[:, 1:][:, positions]
    chat, mask = chat.reshape(-1), mask.reshape(-1)
    counts = torch.bincount(chat[mask], minlength=int(chat.max()) + 1)
    sums = torch.zeros(counts.numel(), device=per_token.device).index_add_(0, chat, per_token.reshape(-1))
    has = counts > 0
    return (sums[has] / counts[has]).mean() if has.any() else per_token.sum() * 0


def sft_trainer(loss_average: str, row_tokens: int | None = None, **kwargs: Any) -> Any:
    """TRL's SFTTrainer with the loss computed from the model's logits: ``chat`` (each chat's mean,
    averaged over chats: :func:`chat_mean_loss`) or ``token`` (the model's own mean over the
    batch's trained tokens, ``Trainer.compute_loss``: TRL's default loss). Either way TRL's fused
    LM-head path is not used: on CPU it is half the speed, and its entropy and token-accuracy logs
    are not kept. Padding-free on sdpa (the CPU default), each chat of the batch's one row attends
    through sdpa's causal kernel (:mod:`tasks.train.chat_attention`; ``bench/sft_speed.py`` measures
    it against the dense mask); under another kernel's dense mask ``row_tokens`` puts the chats into
    rows of at most that many tokens (:class:`tasks.train.sft_data.PackedRows`), since a dense mask
    costs the square of a row. (Built on call: the flow imports this module without loading TRL.)"""
    from transformers import Trainer
    from trl import SFTTrainer

    keep = ("input_ids", "attention_mask", "position_ids", "labels")

    class SftTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = {k: v for k, v in inputs.items() if k in keep}
            if loss_average == "token":
                return Trainer.compute_loss(self, model, inputs, return_outputs, num_items_in_batch)
            labels = inputs.pop("labels")
            kept = trained_positions(labels != -100)
            outputs = model(**inputs, logits_to_keep=kept)
            loss = chat_mean_loss(outputs.logits, labels, inputs.get("position_ids"), kept)
            return (loss, outputs) if return_outputs else loss

    # padding-free on sdpa: each chat of the row through the causal kernel, no dense mask
    by_chat = kwargs["args"].padding_free and use_chat_attention(kwargs["model"])
    trainer = SftTrainer(**kwargs)
    if row_tokens and trainer.args.padding_free and not by_chat:
        trainer.data_collator = sft_data.PackedRows(trainer.data_collator, row_tokens,
                                                    trainer.processing_class.pad_token_id)
    # a per-batch mean: the Trainer divides it by the accumulation steps itself
    trainer.model_accepts_loss_kwargs = loss_average == "token" and trainer.model_accepts_loss_kwargs
    return trainer


def chats(table: pd.DataFrame) -> Any:
    """Chats (a ``messages`` column) as a conversational dataset for TRL."""
    from datasets import Dataset

    return Dataset.from_list([
        {"messages": [{"role": str(m["role"]), "content": str(m["content"])} for m in turns]}
        for turns in table["messages"]])


def phase_rows(p: Sft, phase: SftPhase, tokenizer: Any, seed: int) -> tuple[pd.DataFrame, dict]:
    """The phase's training stream (:mod:`tasks.train.sft_data`): its tables' chats that fit whole,
    ``epochs`` passes, balanced across families by ``p.chats_per_family`` (each family's tokens capped
    by ``phase.tokens_per_family``, the families of ``phase.family_chats`` set outright); and what
    was dropped and trained."""
    table = pd.concat([pd.read_parquet(path, columns=["id", "family", "messages"]) for path in phase.data],
                      ignore_index=True)
    table["n_tokens"] = sft_data.chat_lengths(table["messages"], tokenizer)
    table["reply_tokens"] = sft_data.reply_lengths(table["messages"], tokenizer)
    kept, stats = sft_data.fit(table, p.max_length, p.on_overlength)
    rows = sft_data.training_rows(kept, phase.epochs, p.chats_per_family, seed, phase.tokens_per_family,
                                  phase.family_chats)
    stats.update(epochs=phase.epochs, trained_chats=len(rows), tokens_per_family=phase.tokens_per_family,
                 family_chats=dict(phase.family_chats),
                 trained_per_family=sft_data.family_counts(rows))
    return rows, stats


def loss_mask_stats(prepared: Any, n_chats: int, tokenizer: Any) -> dict[str, Any]:
    """Trained-token counts of the prepared data; raises if the assistant mask is empty or leaks.

    TRL drops chats left without a trained token by truncation; the count is reported.
    """
    total = trained = 0
    for row in prepared:
        labels = row["labels"]
        mask = [label != -100 for label in labels]
        total += len(labels)
        trained += sum(mask)
        if mask and mask[0]:
            raise RuntimeError("sft: the loss mask covers the first token of a chat (the system "
                               "prompt); assistant-only loss is not in effect")
    if trained == 0:
        raise RuntimeError("sft: no token is trained on: the assistant mask is empty (check the "
                           "chat template's {% generation %} markers)")
    first = prepared[0]
    trained_text = tokenizer.decode([i for i, lab in zip(first["input_ids"], first["labels"])
                                     if lab != -100])
    return {"chats": len(prepared), "chats_dropped": n_chats - len(prepared), "tokens": total,
            "trained_tokens": trained, "trained_fraction": trained / total,
            "first_trained_text": trained_text[:80]}


def sft_config(p: Sft, phase: SftPhase, checkpoint_dir: Path, seed: int, gpus: int) -> Any:
    from trl import SFTConfig

    return SFTConfig(
        # the data are the whole multi-epoch stream (phase_rows): one pass over it
        output_dir=str(checkpoint_dir), num_train_epochs=1, max_steps=phase.max_steps or -1,
        seed=seed, data_seed=seed, full_determinism=True,
        learning_rate=phase.learning_rate, per_device_train_batch_size=p.batch_size,
        gradient_accumulation_steps=p.grad_accum, lr_scheduler_type=p.lr_scheduler,
        warmup_steps=p.warmup_ratio, weight_decay=p.weight_decay, max_grad_norm=p.max_grad_norm,
        bf16=p.precision == "bf16", fp16=p.precision == "fp16", use_cpu=gpus == 0,
        gradient_checkpointing=p.gradient_checkpointing, assistant_only_loss=True,
        max_length=None, packing=False,  # phase_rows dropped what would not fit: nothing is cut
        # one row of whole chats, each attending to itself alone (transformers builds the
        # block-diagonal mask from position_ids): no padding to the batch's longest chat
        padding_free=p.padding_free,
        # batches in phase_rows' seeded order, where families mix: length-grouped batches (one
        # family each, since families differ in length) left the model at chance (README)
        train_sampling_strategy="sequential",
        logging_steps=p.logging_steps,
        save_strategy="steps", save_steps=p.save_steps, save_total_limit=2,
        report_to="none", run_name=checkpoint_dir.parent.name,
        dataloader_num_workers=0, ddp_find_unused_parameters=False, disable_tqdm=False)


def train_phase(name: str, p: Sft, phase: SftPhase, start_dir: str, work: Path, cfg: dict[str, Any],
                state: Any) -> dict[str, Any]:
    """One phase: SFT from ``start_dir``; the model (LoRA merged) is saved in ``<work>/model``."""
    out = work / "model"
    if (out / DONE).is_file():  # finished before a kill in a later phase
        return json.loads((out / DONE).read_text())
    tokenizer = load_tokenizer(start_dir)
    try:  # before the model loads: a misnamed family fails at once
        rows, fit_stats = phase_rows(p, phase, tokenizer, cfg["seed"])
    except sft_data.UnknownFamilyError as e:
        raise sft_data.UnknownFamilyError(f"sft.{name}.{e}") from None
    model = load_model(start_dir, tokenizer)
    data = chats(rows)
    checkpoint_dir = work / "checkpoints"
    args = sft_config(p, phase, checkpoint_dir, cfg["seed"], cfg["gpus"])
    trainer = sft_trainer(p.loss_average, row_tokens=p.max_length, model=model, args=args, train_dataset=data,
                          processing_class=tokenizer,
                          peft_config=lora_config(p.lora, tag_token_ids(tokenizer)),
                          callbacks=[MlflowLog("sft", name)])
    mask = loss_mask_stats(trainer.train_dataset, len(data), tokenizer)
    last = last_complete_checkpoint(checkpoint_dir)
    result = trainer.train(resume_from_checkpoint=last)
    save_trained(trainer, out, p.lora, state.is_main_process)
    state.wait_for_everyone()
    summary = {"phase": name, "examples": len(data), **fit_stats, **mask, "train_loss": result.training_loss,
               "steps": trainer.state.global_step,
               "resumed_from_step": int(last.rsplit("-", 1)[1]) if last else 0,
               "train_seconds": result.metrics.get("train_runtime"), "lora": p.lora.enabled}
    if state.is_main_process:
        (out / "training_args.bin").unlink(missing_ok=True)  # no pickles cross a stage boundary
        (work / "history.json").write_text(json.dumps(trainer.state.log_history))
        (out / DONE).write_text(json.dumps(summary, indent=2))
    state.wait_for_everyone()
    return summary


def train(cfg: dict[str, Any]) -> dict[str, Any] | None:
    """Every phase as one process of the launch; returns the metrics on the main process."""
    from accelerate import PartialState

    p = Sft.model_validate(cfg["params"])
    state = PartialState(cpu=cfg["gpus"] == 0)  # a torchrun-started CPU group joins over gloo
    work, start, trained = Path(cfg["work_dir"]), cfg["start_dir"], {}
    for name, phase in phases(p).items():
        trained[name] = train_phase(name, p, phase, start, work / name, cfg, state)
        start = str(work / name / "model")
    if not state.is_main_process:
        return None
    metrics = {"phases": trained, "final_model": start, "processes": state.num_processes}
    Path(cfg["metrics_path"]).write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="run.json written by flows/sft.py")
    train(json.loads(Path(parser.parse_args(argv).config).read_text()))


if __name__ == "__main__":
    main()
