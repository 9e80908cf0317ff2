"""The grpo flow end to end on stand-in inputs: outputs, reports, MLflow, scratch, bad input."""
import json

import pandas as pd
import pytest

from tasks.common.errors import InputError
from tests.conftest import PROJECT
from tests.grpo_fixtures import write_inputs, write_params


@pytest.mark.slow
def test_grpo_flow_trains_checks_and_logs(mlflow_uri, tmp_path, tiny_base):
    write_inputs(tmp_path)
    # the answer-only rollouts here; the end-to-end repro (smoke) runs the reasoning ones
    write_params(tmp_path, PROJECT, str(tiny_base[0]), online={"prompt": "direct"})

    from flows.grpo import grpo_flow

    grpo_flow()

    model = tmp_path / "models/grpo"
    assert (model / "model.safetensors").exists() and (model / "tokenizer.json").exists()
    manifest = json.loads((model / "verifiers/manifest.json").read_text())
    assert manifest["fitted_on"] == "train"
    metrics = json.loads((tmp_path / "reports/grpo/metrics.json").read_text())
    assert metrics["mode"] == "offline_then_online" and metrics["verifier_training_entities_checked"] > 0
    assert metrics["offline"]["steps"] == 2 and metrics["online"]["steps"] == 2
    assert metrics["online"]["init"] == "offline phase"
    # the online prompt style is the stage's (what the rollouts' prompts are: tests/test_grpo_data.py)
    assert metrics["online_prompt"] == "direct"
    assert set(metrics["online"]["verifiers"]) >= {"correctness", "format"}
    assert "start/all" in metrics["heldout"] and "grpo/all" in metrics["heldout"]
    curve = pd.read_csv(tmp_path / "reports/grpo/reward.csv")
    assert curve["step"].tolist() == [1, 2] and "frac_reward_zero_std" in curve and "kl" in curve
    heldout = pd.read_csv(tmp_path / "reports/grpo/heldout.csv")
    assert set(heldout["model"]) == {"start", "grpo"}
    assert [p.name for p in (tmp_path / "scratch/grpo").iterdir()] == []  # scratch removed when done

    from mlflow import MlflowClient

    client = MlflowClient(mlflow_uri)
    run = client.search_runs(client.get_experiment_by_name("omicsforge").experiment_id)[0]
    assert "grpo/online/reward" in run.data.metrics and "grpo/offline/weighted_nll" in run.data.metrics
    assert len(client.get_metric_history(run.info.run_id, "grpo/online/reward")) == 2
    tables = [a.path for a in client.list_artifacts(run.info.run_id, "completions")]
    assert any(p.endswith("online_step_00001.json") for p in tables)


def test_missing_start_checkpoint_is_a_clear_error(mlflow_uri, tmp_path):
    write_inputs(tmp_path)
    write_params(tmp_path, PROJECT, "models/sft")

    from flows.grpo import grpo_flow

    with pytest.raises(InputError, match="models/sft"):
        grpo_flow.fn()


@pytest.mark.slow
def test_no_family_with_room_stops_the_stage_before_training(mlflow_uri, tmp_path, tiny_base):
    """An untrained model is right nowhere: the room check (real sampled completions, judged) keeps
    no family, and the stage stops with the accuracies, writing no model and no report."""
    write_inputs(tmp_path)
    write_params(tmp_path, PROJECT, str(tiny_base[0]), mode="online",
                 room={"problems_per_family": 2, "samples": 2})

    from flows.grpo import grpo_flow

    with pytest.raises(InputError, match=r"no family has room .*cell_type 0\.00"):
        grpo_flow.fn()
    assert not (tmp_path / "models/grpo").exists()
    assert not (tmp_path / "reports/grpo/metrics.json").exists()
