import json
import os
import signal
import subprocess
import time

import pandas as pd
import pytest

from tasks.common import dispatch

from tasks.train import packing
from tasks.lm.modeling import load_tokenizer
from tasks.common.params import Pretrain
from tasks.train.pretrain import last_complete_checkpoint
from tests.conftest import PROJECT, toy_texts


def _run_config(base, tmp_path, **overrides):
    tok = load_tokenizer(base)
    texts = pd.Series(toy_texts(200))
    train, _ = packing.tokenize_and_pack(texts[:180], tok, block_size=32, seed=0)
    heldout, _ = packing.tokenize_and_pack(texts[180:], tok, block_size=32, seed=0)
    packing.save_blocks(train, tmp_path / "train.npy")
    packing.save_blocks(heldout, tmp_path / "heldout.npy")
    settings = dict(block_size=32, batch_size=2, token_budget=32 * 2 * 8, learning_rate=3e-3,
                    logging_steps=2, eval_steps=4, save_steps=4, max_eval_blocks=8)
    params = Pretrain(**{**settings, **overrides})
    cfg = {"params": params.model_dump(mode="json"), "seed": 0, "gpus": 0, "base_dir": str(base),
           "train_blocks": str(tmp_path / "train.npy"), "heldout_blocks": str(tmp_path / "heldout.npy"),
           "checkpoint_dir": str(tmp_path / "checkpoints"), "metrics_path": str(tmp_path / "metrics.json"),
           "curve_path": str(tmp_path / "history.json"), "output_dir": str(tmp_path / "model")}
    (tmp_path / "run.json").write_text(json.dumps(cfg))
    return cfg


def test_checkpoint_without_trainer_state_is_skipped(tmp_path):
    for step, complete in [(4, True), (8, True), (12, False)]:
        (tmp_path / f"checkpoint-{step}").mkdir()
        if complete:
            (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(tmp_path).endswith("checkpoint-8")
    assert last_complete_checkpoint(tmp_path / "none") is None


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(PROJECT)
    cfg = _run_config(tiny_base[0], tmp_path, token_budget=32 * 2 * 60, save_steps=10,
                       eval_steps=30)
    cmd = dispatch.accelerate_command("tasks.train.pretrain", ["--config", str(tmp_path / "run.json")], cpu=True)
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("MLFLOW_RUN_ID", None)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 240
    try:
        while last_complete_checkpoint(tmp_path / "checkpoints") is None:
            assert proc.poll() is None, "training ended before writing a checkpoint"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the launcher and its training child, as a crash would
        proc.wait()
    killed_at = int(last_complete_checkpoint(tmp_path / "checkpoints").rsplit("-", 1)[1])
    assert 0 < killed_at < 60 and not (tmp_path / "metrics.json").exists()

    dispatch.launch("tasks.train.pretrain", ["--config", str(tmp_path / "run.json")])
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["resumed_from_step"] >= killed_at
    assert metrics["steps"] == 60
    history = json.loads((tmp_path / "history.json").read_text())
    assert [h["step"] for h in history if "loss" in h][:2] == [2, 4]  # curve kept across the kill
