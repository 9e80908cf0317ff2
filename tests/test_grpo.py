"""The grpo training child: completion tables, extra columns, and resume after a kill (slow)."""
import json
import os
import signal
import subprocess
import sys

import pandas as pd
import torch
import pytest

from tasks.train.grpo import completion_table, with_extras
from tasks.train.pretrain import last_complete_checkpoint
from tests.conftest import PROJECT


def test_completion_table_flattens_chats():
    df = pd.DataFrame({"step": [3], "prompt": [[{"role": "system", "content": "s"},
                                                 {"role": "user", "content": "Which type? " * 100}]],
                       "completion": [[{"role": "assistant", "content": "<think>x</think><answer>B</answer>"}]],
                       "correctness": [1.0], "cell_type": [float("nan")], "advantage": [0.5]})
    out = completion_table(df, prompt_chars=20)
    assert out["prompt"][0] == "Which type? Which ty" and out["completion"][0].endswith("</answer>")
    assert out["correctness"][0] == 1.0


def test_with_extras_logs_family_and_id_and_keeps_the_name():
    logged = {}

    def correctness(prompts, completions, **columns):
        return [1.0] * len(completions)

    wrapped = with_extras(correctness)
    out = wrapped(["p", "q"], ["a", "b"], family=["x", "y"], id=["1", "2"],
                  log_extra=lambda column, values: logged.setdefault(column, values))
    assert out == [1.0, 1.0] and wrapped.__name__ == "correctness"
    assert logged == {"family": ["x", "y"], "problem_id": ["1", "2"]}


def _child_config(root, init, **overrides):
    from tasks.lm.modeling import load_tokenizer
    from tasks.train.multitrace import trace_table
    from tasks.common.params import Grpo, Verifiers
    from tasks.common.prompts import load_prompts
    from tasks.train.grpo_data import cap_per_family, rollout_prompts
    from tasks.verifiers.fitted import fit_verifiers
    from tests.grpo_fixtures import problems, traces
    from tests.verifier_fixtures import SETTINGS, write_corpus

    table, prompts = problems(), load_prompts(None)
    work = root / "work"
    work.mkdir()
    fit_verifiers(table, write_corpus(root / "corpus"), work / "verifiers", SETTINGS)
    online, _ = rollout_prompts(table, prompts, "answer", load_tokenizer(init), [], 400)
    cap_per_family(online, 1).to_parquet(work / "online.parquet")
    trace_table(traces(table), table, prompts, "answer", 1.0, 1e-4).to_parquet(work / "offline.parquet")
    settings = {"init": str(init), "mode": "offline_then_online",
                "online": {"steps": 4, "num_generations": 2, "prompts_per_step": 2, "max_completion_length": 6,
                           "save_steps": 1, "learning_rate": 1e-3},
                "offline": {"max_steps": 2, "groups_per_step": 1, "max_length": 1536, "save_steps": 1}}
    p = Grpo(**{**settings, **overrides})
    cfg = {"params": p.model_dump(mode="json"), "verifiers": SETTINGS.model_dump(mode="json"), "seed": 0,
           "gpus": 0, "tensor_parallel_size": 1, "init_dir": str(init), "work_dir": str(work),
           "verifiers_dir": str(work / "verifiers"), "online_data": str(work / "online.parquet"),
           "offline_data": str(work / "offline.parquet"), "metrics_path": str(work / "metrics.json"),
           "output_dir": str(root / "out")}
    (work / "run.json").write_text(json.dumps(cfg))
    return work


def _run(cmd, env, cwd, log):
    """Run a child to its end, its output appended to ``log``; return its exit code."""
    with open(log, "a") as out:
        return subprocess.run(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT).returncode


def _tail(log, lines=40):
    return "".join(log.read_text().splitlines(keepends=True)[-lines:])


@pytest.mark.slow
def test_killed_child_resumes_from_its_last_checkpoint(tiny_base, tmp_path):
    work = _child_config(tmp_path, tiny_base[0])
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MLFLOW_RUN_ID": ""}
    args = ["--config", str(work / "run.json")]
    log = tmp_path / "child.log"  # both runs' output, shown when an assertion fails
    # The kill point is fixed, not timed: the child kills itself (SIGKILL) right after its second
    # online checkpoint is complete, so the test never races the checkpoints' rotation or the end.
    code = _run([sys.executable, "-m", "tests.grpo_kill_child", "--kill-at", "2", *args], env, tmp_path, log)
    checkpoints = work / "online/checkpoints"
    assert code == -signal.SIGKILL, f"the child was not killed at checkpoint 2 (exit {code}):\n{_tail(log)}"
    assert last_complete_checkpoint(checkpoints) == str(checkpoints / "checkpoint-2"), _tail(log)
    assert not (work / "metrics.json").exists(), _tail(log)                # killed before the end
    offline_done = (work / "offline/done.json").stat().st_mtime_ns

    code = _run([sys.executable, "-m", "tasks.train.grpo", *args], env, tmp_path, log)
    assert code == 0, f"the resumed child failed (exit {code}):\n{_tail(log)}"
    metrics = json.loads((work / "metrics.json").read_text())
    assert (work / "offline/done.json").stat().st_mtime_ns == offline_done  # finished phase not rerun
    assert metrics["offline"]["steps"] == 2
    assert metrics["online"]["resumed_from_step"] == 2 and metrics["online"]["steps"] == 4, _tail(log)
    assert metrics["online"]["init"] == "offline phase"
    assert (tmp_path / "out/model.safetensors").exists()
    assert not (tmp_path / "out/training_args.bin").exists()


@pytest.mark.slow
def test_lora_phases_save_merged_models_that_moved(tiny_base, tmp_path):
    from safetensors.torch import load_file

    lora = {"enabled": True, "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    work = _child_config(tmp_path, tiny_base[0], lora=lora)
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MLFLOW_RUN_ID": ""}
    log = tmp_path / "child.log"
    code = _run([sys.executable, "-m", "tasks.train.grpo", "--config", str(work / "run.json")], env, tmp_path, log)
    assert code == 0, _tail(log)
    start = load_file(tiny_base[0] / "model.safetensors")
    for folder in (work / "offline/model", tmp_path / "out"):
        assert not (folder / "adapter_config.json").exists() and (folder / "tokenizer.json").exists()
        weights = load_file(folder / "model.safetensors")
        assert set(weights) == set(start)  # merged: the start's tensor names, no lora_ ones
        moved = [n for n in start if not torch.equal(start[n], weights[n])]
        assert moved and all(("q_proj" in n or "v_proj" in n) for n in moved), moved
