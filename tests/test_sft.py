"""SFT: assistant-only loss mask, two CPU processes, resume after a kill, the flow with LoRA."""
import json
import os
import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest
import yaml

from tasks.common import dispatch
from tasks.lm.modeling import load_model
from tasks.common.params import Sft
from tasks.train.pretrain import last_complete_checkpoint
from tests.conftest import PROJECT
from tests.sft_fixtures import write_chats


def _cfg(base, tmp_path, instruction_steps=4, cold_steps=4, **overrides):
    write_chats(tmp_path / "instruction.parquet", 32)
    write_chats(tmp_path / "gold.parquet", 48, seed=1)
    settings = dict(batch_size=2, max_length=256, logging_steps=2, save_steps=2)
    p = Sft(instruction={"data": [str(tmp_path / "instruction.parquet")], "epochs": 10,
                         "max_steps": instruction_steps, "learning_rate": 3e-3},
            cold_start={"data": [str(tmp_path / "gold.parquet")], "epochs": 10,
                        "max_steps": cold_steps, "learning_rate": 3e-3}, **{**settings, **overrides})
    cfg = {"params": p.model_dump(mode="json"), "seed": 0, "gpus": 0, "start_dir": str(base),
           "work_dir": str(tmp_path / "work"), "metrics_path": str(tmp_path / "metrics.json")}
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    return cfg


def test_assistant_only_mask_trains_the_reply_not_the_prompt(tiny_base, tmp_path):
    from trl import SFTTrainer

    from tasks.lm.modeling import load_tokenizer
    from tasks.train.sft import chats, loss_mask_stats, sft_config

    cfg = _cfg(tiny_base[0], tmp_path)
    p = Sft.model_validate(cfg["params"])
    tokenizer = load_tokenizer(tiny_base[0])
    data = chats(pd.read_parquet(p.cold_start.data[0]))
    trainer = SFTTrainer(model=load_model(tiny_base[0], tokenizer), processing_class=tokenizer,
                         args=sft_config(p, p.cold_start, tmp_path / "x" / "checkpoints", 0, gpus=0),
                         train_dataset=data)
    stats = loss_mask_stats(trainer.train_dataset, len(data), tokenizer)
    assert 0 < stats["trained_fraction"] < 0.5
    assert stats["first_trained_text"].startswith("<think>")
    assert stats["first_trained_text"].rstrip().endswith("<|im_end|>") or "</answer>" in stats["first_trained_text"]
    row = trainer.train_dataset[0]
    trained = tokenizer.decode([i for i, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
    assert trained.endswith("</answer><|im_end|>")  # the model learns to stop


def test_sft_trainer_losses(tiny_base, tmp_path):
    """token: TRL's own loss, computed from the logits; chat: each chat's mean, then the mean."""
    import torch
    from trl import SFTTrainer

    from tasks.lm.modeling import load_tokenizer
    from tasks.train.sft import chats, sft_config, sft_trainer

    cfg = _cfg(tiny_base[0], tmp_path, padding_free=False)
    p = Sft.model_validate(cfg["params"])
    tokenizer = load_tokenizer(tiny_base[0])
    model = load_model(tiny_base[0], tokenizer)
    kwargs = dict(model=model, processing_class=tokenizer, train_dataset=chats(pd.read_parquet(p.cold_start.data[0])),
                  args=sft_config(p, p.cold_start, tmp_path / "x" / "checkpoints", 0, gpus=0))
    token, chat, trls = sft_trainer("token", **kwargs), sft_trainer("chat", **kwargs), SFTTrainer(**kwargs)
    batch = next(iter(token.get_train_dataloader()))
    with torch.no_grad():
        a, b = float(token.compute_loss(model, dict(batch))), float(trls.compute_loss(model, dict(batch)))
        c = float(chat.compute_loss(model, dict(batch)))
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert 1.0 < a and abs(a - b) < 1e-4 * b
    labels = batch["labels"]
    assert (labels != -100).sum(1).unique().numel() > 1  # replies of different lengths: the two differ
    per_chat = [torch.nn.functional.cross_entropy(logits[i, :-1][labels[i, 1:] != -100],
                                                  labels[i, 1:][labels[i, 1:] != -100]) for i in range(len(labels))]
    assert abs(c - float(torch.stack(per_chat).mean())) < 1e-4 * c
    assert not chat.model_accepts_loss_kwargs  # the Trainer divides by the accumulation steps


def _trainer(base, tmp_path, loss="chat", **overrides):
    from tasks.lm.modeling import load_tokenizer
    from tasks.train.sft import chats, sft_config, sft_trainer

    p = Sft.model_validate(_cfg(base, tmp_path, **overrides)["params"])
    tokenizer = load_tokenizer(base)
    return sft_trainer(loss, row_tokens=p.max_length, model=load_model(base, tokenizer), processing_class=tokenizer,
                       train_dataset=chats(pd.read_parquet(p.cold_start.data[0])),
                       args=sft_config(p, p.cold_start, tmp_path / "x" / "checkpoints", 0, gpus=0)), p


@pytest.mark.parametrize("padding_free", [True, False])
def test_batches_follow_the_seeded_stream(tiny_base, tmp_path, padding_free):
    """The trainer takes phase_rows' order as it is (families mixed), not regrouped by length;
    padding-free, a batch is those chats end to end in one row, each restarting at position 0."""
    trainer, p = _trainer(tiny_base[0], tmp_path, padding_free=padding_free)
    for step, batch in zip(range(3), trainer.get_train_dataloader()):
        rows = trainer.train_dataset[step * p.batch_size:(step + 1) * p.batch_size]["input_ids"]
        if padding_free:
            assert "attention_mask" not in batch
            got = _chats_in_rows(batch)
            assert sorted(got) == sorted(rows)
        else:
            got = [[int(t) for t, m in zip(ids, mask) if m] for ids, mask in
                   zip(batch["input_ids"], batch["attention_mask"])]
            assert got == rows


def _chats_in_rows(batch):
    """The chats of a padding-free batch (segments restarting at position 0), without the rows'
    padding segments (no trained token)."""
    chats = []
    for ids, positions, labels in zip(batch["input_ids"], batch["position_ids"], batch["labels"]):
        starts = (positions == 0).nonzero().flatten().tolist() + [len(ids)]
        chats += [ids[a:b].tolist() for a, b in zip(starts, starts[1:]) if (labels[a:b] != -100).any()]
    return chats


@pytest.mark.parametrize("loss", ["chat", "token"])
def test_padding_free_batches_give_the_padded_loss(tiny_base, tmp_path, loss, monkeypatch):
    """The same chats padded to the longest, or end to end: one loss (each chat sees only itself),
    with chats of different lengths so that padding would matter. On sdpa the chats go in one row,
    attended chat by chat; under a dense mask, in rows of at most max_length, padded to the longest."""
    import torch

    from tasks.train import sft

    padded, _ = _trainer(tiny_base[0], tmp_path / "a", loss, padding_free=False, batch_size=6)
    a = next(iter(padded.get_train_dataloader()))
    assert a["attention_mask"].sum(1).unique().numel() > 1
    longest = int(a["attention_mask"].sum(1).max())
    with torch.no_grad():
        x = float(padded.compute_loss(padded.model, dict(a)))
        for dense, max_length, n_rows in ((False, 256, 1), (False, longest, 1), (True, 256, 1),
                                          (True, longest, 2)):
            with monkeypatch.context() as m:
                if dense:
                    m.setattr(sft, "use_chat_attention", lambda model: False)
                free, _ = _trainer(tiny_base[0], tmp_path / f"b{dense}{max_length}", loss, padding_free=True,
                                   batch_size=6, max_length=max_length)
            assert (free.model.config._attn_implementation == "sdpa") == dense
            b = next(iter(free.get_train_dataloader()))
            assert (b["input_ids"].shape[0] >= n_rows if dense else b["input_ids"].shape[0] == 1)
            assert sorted(_chats_in_rows(b)) == sorted(
                [[int(t) for t, m in zip(ids, mask) if m] for ids, mask in zip(a["input_ids"], a["attention_mask"])])
            y = float(free.compute_loss(free.model, dict(b)))
            assert x > 1.0 and abs(x - y) < 1e-4 * x, (dense, max_length, x, y)


@pytest.mark.slow
def test_killed_sft_resumes_from_its_checkpoint(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    _cfg(tiny_base[0], tmp_path, instruction_steps=2, cold_steps=40, save_steps=4)
    cmd = dispatch.accelerate_command("tasks.train.sft", ["--config", str(tmp_path / "run.json")], cpu=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    checkpoints = tmp_path / "work" / "cold_start" / "checkpoints"
    deadline = time.time() + 300
    try:
        while last_complete_checkpoint(checkpoints) is None:
            assert proc.poll() is None, "training ended before writing a checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its training child, as a crash would
        proc.wait()
    killed_at = int(last_complete_checkpoint(checkpoints).rsplit("-", 1)[1])
    assert 0 < killed_at < 40 and not (tmp_path / "metrics.json").exists()

    dispatch.launch("tasks.train.sft", ["--config", str(tmp_path / "run.json")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["phases"]["cold_start"]["resumed_from_step"] >= killed_at
    assert metrics["phases"]["cold_start"]["steps"] == 40
    assert metrics["phases"]["instruction"]["steps"] == 2  # the finished phase was not retrained


def _flow_inputs(tmp_path, tiny_base, family_chats, chats, **smoke):
    """A project folder for ``sft_flow``: the repo's sft params on the smoke profile (``smoke``
    merged into it, the answer phase's ``family_chats`` replaced), the tiny model as
    models/pretrain, and ``chats`` = (instruction, cold-start, answer-only) chat counts."""
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params = {"base": {"seed": 0, "profile": "smoke"}, "sft": raw["sft"]}
    params["sft"]["answer"]["family_chats"] = family_chats
    params["sft"]["profiles"]["smoke"].update(smoke)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    shutil.copytree(tiny_base[0], tmp_path / "models/pretrain")
    for (name, seed), n in zip((("sft_instruction", 0), ("sft", 1), ("sft_direct", 2)), chats):
        write_chats(tmp_path / f"data/annotate/{name}.parquet", n, seed=seed)


@pytest.mark.slow
def test_sft_flow_with_lora_writes_a_merged_model_and_curves(mlflow_uri, tiny_base, tmp_path):
    from mlflow import MlflowClient

    # the default's family_chats names families these chats lack
    _flow_inputs(tmp_path, tiny_base, family_chats={}, chats=(16, 12, 12),
                 instruction={"max_steps": 2}, answer={"max_steps": 2}, cold_start={"max_steps": 4},
                 max_length=256, batch_size=2,
                 logging_steps=2, save_steps=2, lora={"enabled": True, "r": 4, "alpha": 8})

    from flows.sft import sft_flow

    sft_flow()

    metrics = json.loads((tmp_path / "reports/sft/metrics.json").read_text())
    assert metrics["steps"] == 8 and metrics["phases"]["cold_start"]["lora"] is True
    model_dir = tmp_path / "models/sft"
    assert not (model_dir / "adapter_config.json").exists() and not (model_dir / "phase.json").exists()
    model = load_model(model_dir)
    assert not [n for n, _ in model.named_parameters() if "lora" in n]
    # the tag tokens' embedding rows trained with the adapters, and no other row
    from tasks.lm.modeling import load_tokenizer
    from tasks.train.lora import tag_token_ids

    start = load_model(tiny_base[0]).get_input_embeddings().weight
    rows = (start != model.get_input_embeddings().weight).any(dim=1).nonzero().flatten().tolist()
    assert rows and set(rows) <= set(tag_token_ids(load_tokenizer(model_dir))), rows
    curve = pd.read_csv(tmp_path / "reports/sft/loss.csv")
    assert curve["phase"].tolist() == ["instruction", "answer", "cold_start", "cold_start"]
    assert curve["global_step"].tolist() == [2, 4, 6, 8]
    assert not any((tmp_path / "scratch/sft").iterdir())  # checkpoints removed once saved
    client = MlflowClient(mlflow_uri)
    runs = client.search_runs([client.get_experiment_by_name("omicsforge").experiment_id])
    assert [r.info.run_name for r in runs] == ["sft"]  # the phases log into the stage's run
    stage = runs[0]
    assert [m.step for m in client.get_metric_history(stage.info.run_id, "sft/cold_start/loss")] == [2, 4]
    assert [m.step for m in client.get_metric_history(stage.info.run_id, "sft/instruction/loss")] == [2]
    assert [m.step for m in client.get_metric_history(stage.info.run_id, "sft/answer/loss")] == [2]
    assert not any(k.startswith(("gradient_accumulation", "per_device")) for k in stage.data.params)


@pytest.mark.slow
def test_family_chats_naming_a_family_the_data_lacks_stops_the_flow_naming_the_phase(
        mlflow_uri, tiny_base, tmp_path):
    # training runs in an accelerate child: the error reaches the flow as its message
    _flow_inputs(tmp_path, tiny_base, family_chats={"cell_type": 4, "perturb_dirr": 4}, chats=(4, 4, 4),
                 instruction={"max_steps": 1}, answer={"max_steps": 1}, cold_start={"max_steps": 1},
                 max_length=256, batch_size=2, logging_steps=1, save_steps=1)

    from flows.sft import sft_flow

    with pytest.raises(Exception, match=r"sft\.answer\.family_chats names \['perturb_dirr'\]"):
        sft_flow()
    assert not (tmp_path / "models/sft").exists()
