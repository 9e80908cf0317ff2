"""SFT step speed, side by side in one run on the same model, chats and steps: TRL's own
SFTTrainer against the stage's ``sft_trainer`` (loss from the logits), padded batches against
padding-free ones (``sft.padding_free``), padding-free rows attended chat by chat through sdpa's
causal kernel (``tasks.train.chat_attention``, what the stage does: one row a batch) against
transformers' dense block-diagonal mask (in rows of at most ``sft.max_length`` tokens, what the
stage did before), and the stage's per-chat loss from the logits of the trained positions only
(``sft.trained_positions``) against the same loss from the logits of every position.

    PYTHONPATH=$PWD python bench/sft_speed.py [--model models/pretrain] [--steps 20] [--rounds 2]

Each round trains every variant from the same start for ``--steps`` steps of the default
profile's answer phase (``sft.answer``: ``data/annotate/sft_direct.parquet``, ``sft.batch_size``,
families mixed in each batch) and prints chat tokens (padding not counted) per second of each, the
ratios, and the training losses (they must agree: the same loss, computed differently; the two
per-chat variants against each other). Rounds alternate the order, so a noisy machine does not
favour one.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock


def every_position(trained):  # noqa: ANN001, ANN201
    """What ``sft.trained_positions`` would be if it kept nothing out: every position but the last."""
    import torch

    return torch.arange(trained.size(1) - 1, device=trained.device)


def run(make, model_dir: str, steps: int, padding_free: bool, dense_rows: bool = False,
        all_logits: bool = False) -> dict:
    from tasks.common.params import load_params
    from tasks.lm.modeling import load_model, load_tokenizer
    from tasks.train import sft

    p = load_params(require=("sft",)).sft.model_copy(update={"padding_free": padding_free})
    phase = (p.answer or p.cold_start).model_copy(update={"epochs": 1, "max_steps": steps})
    tokenizer = load_tokenizer(model_dir)
    chats, _ = sft.phase_rows(p, phase, tokenizer, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        args = sft.sft_config(p, phase, Path(tmp) / "checkpoints", seed=0, gpus=0)
        args.save_strategy, args.disable_tqdm = "no", True
        model = load_model(model_dir, tokenizer)
        # as the stage calls it; row_tokens matters only where chat attention does not apply
        with mock.patch.object(sft, "use_chat_attention", lambda model: False) if dense_rows else nullcontext():
            trainer = make(model=model, args=args, train_dataset=sft.chats(chats), processing_class=tokenizer,
                           row_tokens=p.max_length)
        used = trainer.train_dataset.select(range(min(len(trainer.train_dataset), steps * p.batch_size)))
        tokens = sum(len(r["input_ids"]) for r in used)
        patch = mock.patch.object(sft, "trained_positions", every_position) if all_logits else nullcontext()
        start = time.perf_counter()
        with patch:
            result = trainer.train()
        seconds = time.perf_counter() - start
    return {"tokens_per_s": round(tokens / seconds), "seconds": round(seconds, 1),
            "train_loss": round(result.training_loss, 5)}


def main() -> None:
    from trl import SFTTrainer

    from tasks.train.sft import sft_trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/pretrain")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    a = parser.parse_args()
    # token: the same loss as TRL's default, so the runs differ only in how it is computed
    variants = {"trl_sfttrainer": (lambda row_tokens, **kw: SFTTrainer(**kw), False),
                "sft_trainer": (lambda **kw: sft_trainer("token", **kw), False),
                "sft_trainer_padding_free_dense_rows": (lambda **kw: sft_trainer("token", **kw), True, True),
                "sft_trainer_padding_free": (lambda **kw: sft_trainer("token", **kw), True),
                # the stage's own loss (per chat): as the stage runs it; from every position's
                # logits; under the dense mask in rows (the stage before chat attention)
                "stage_chat_loss": (lambda **kw: sft_trainer("chat", **kw), True),
                "stage_chat_loss_all_logits": (lambda **kw: sft_trainer("chat", **kw), True, False, True),
                "stage_chat_loss_dense_rows": (lambda **kw: sft_trainer("chat", **kw), True, True)}
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(a.rounds):
        for name in (list(variants) if r % 2 == 0 else list(variants)[::-1]):
            results[name].append(run(variants[name][0], a.model, a.steps, *variants[name][1:]))
            print(name, results[name][-1], flush=True)
    speed = {name: sum(x["tokens_per_s"] for x in rs) / len(rs) for name, rs in results.items()}
    ref = results["trl_sfttrainer"]
    token_loss = [name for name in variants if not name.startswith("stage_")]
    print(json.dumps({"tokens_per_s": speed,
                      "ratio_sft_trainer_vs_trl": round(speed["sft_trainer"] / speed["trl_sfttrainer"], 2),
                      "ratio_padding_free_vs_padded": round(speed["sft_trainer_padding_free"]
                                                            / speed["sft_trainer"], 2),
                      "ratio_chat_attention_vs_dense_rows": round(
                          speed["sft_trainer_padding_free"] / speed["sft_trainer_padding_free_dense_rows"], 2),
                      "ratio_stage_vs_stage_dense_rows": round(
                          speed["stage_chat_loss"] / speed["stage_chat_loss_dense_rows"], 2),
                      "ratio_trained_positions_vs_all_logits": round(
                          speed["stage_chat_loss"] / speed["stage_chat_loss_all_logits"], 2),
                      "losses_agree": all(abs(x["train_loss"] - y["train_loss"]) < 1e-4 * abs(y["train_loss"])
                                          for name in token_loss for x, y in zip(results[name], ref)),
                      "chat_losses_agree": all(
                          abs(x["train_loss"] - y["train_loss"]) < 1e-4 * abs(y["train_loss"])
                          for other in ("stage_chat_loss_all_logits", "stage_chat_loss_dense_rows")
                          for x, y in zip(results["stage_chat_loss"], results[other]))}))


if __name__ == "__main__":
    main()
