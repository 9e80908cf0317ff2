"""The training harness: scratch key and folder, run.json and the launch on base's layout; each
training child (pretrain, sft, grpo) under configs/accelerate/cpu_ddp.yaml (slow)."""
import json

import pytest

from tasks.common.params import Base, parse_params
from tasks.train import harness
from tests.conftest import PROJECT

CPU_DDP = str(PROJECT / "configs/accelerate/cpu_ddp.yaml")


def test_prepare_keys_on_params_layout_and_inputs_and_drops_other_keys(tmp_path):
    data = tmp_path / "chats.parquet"
    data.write_bytes(b"one")
    params = parse_params({"pretrain": {"batch_size": 2}})
    root = tmp_path / "scratch"
    first = harness.prepare("pretrain", params, [data], root=root)
    assert first.parent == root / "pretrain" and len(first.name) == 12
    assert harness.prepare("pretrain", params, [data], root=root) == first  # same inputs: resume
    (first / "checkpoint-1").mkdir()
    on_two = parse_params({"base": {"accelerate_config": CPU_DDP}, "pretrain": {"batch_size": 2}})
    assert harness.prepare("pretrain", on_two, [data], root=root) != first  # another layout
    data.write_bytes(b"two")
    latest = harness.prepare("pretrain", params, [data], root=root)
    assert latest != first and [p.name for p in (root / "pretrain").iterdir()] == [latest.name]


def test_run_child_writes_run_json_and_launches_on_base_layout(tmp_path, monkeypatch):
    calls = []

    def launch(module, args, **kwargs):
        calls.append((module, args, kwargs))
        (tmp_path / "metrics.json").write_text('{"processes": 2}')

    monkeypatch.setattr(harness.dispatch, "launch", launch)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    base = Base(seed=3, accelerate_config=CPU_DDP, gpus=0)
    assert harness.run_child("sft", tmp_path, {"start_dir": "m"}, base, "abc") == {"processes": 2}
    cfg = json.loads((tmp_path / "run.json").read_text())
    assert cfg == {"start_dir": "m", "seed": 3, "gpus": 0, "work_dir": str(tmp_path),
                   "metrics_path": str(tmp_path / "metrics.json")}
    module, args, kwargs = calls[0]
    assert module == "tasks.train.sft" and args == ["--config", str(tmp_path / "run.json")]
    assert kwargs.pop("on_line").key == "sft-progress"  # the child's progress lines reach Prefect
    assert kwargs == {"config_file": CPU_DDP, "gpus": 0, "log_file": tmp_path / "train.log",
                      "env": {"MLFLOW_RUN_ID": "abc", "MLFLOW_TRACKING_URI": "sqlite:///x.db"}}


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["pretrain", "sft", "grpo"])
def test_each_training_child_runs_two_processes_under_cpu_ddp(stage, tiny_base, tmp_path, monkeypatch):
    from tests.test_grpo import _child_config
    from tests.test_pretrain import _run_config
    from tests.test_sft import _cfg

    monkeypatch.chdir(PROJECT)
    work = tmp_path
    if stage == "pretrain":  # 2 processes x 2 blocks x 32 tokens per step: 512 tokens are 4 steps
        cfg = _run_config(tiny_base[0], tmp_path)
    elif stage == "sft":
        cfg = _cfg(tiny_base[0], tmp_path, instruction_steps=1, cold_steps=1)
    else:
        work = _child_config(tmp_path, tiny_base[0], mode="online",
                             online={"steps": 1, "num_generations": 2, "prompts_per_step": 1,
                                     "max_completion_length": 4, "save_steps": 5})
        cfg = json.loads((work / "run.json").read_text())
    metrics = harness.run_child(stage, work, cfg, Base(accelerate_config=CPU_DDP))
    assert (work / "train.log").is_file()
    if stage == "pretrain":
        assert metrics["processes"] == 2 and metrics["steps"] == 4 and metrics["tokens_trained"] == 512
        assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
        assert not (tmp_path / "model" / "training_args.bin").exists()
    elif stage == "sft":
        assert metrics["processes"] == 2
        assert [ph["steps"] for ph in metrics["phases"].values()] == [1, 1]
    else:
        assert metrics["online"]["processes"] == 2 and metrics["online"]["steps"] == 1
