"""The whole pipeline as a user runs it: ``dvc repro`` on the smoke profile in a fresh copy.

DVC runs every stage, each stage's command runs its Prefect flow, MLflow records one run per stage
execution; a second ``dvc repro`` does nothing.
"""
import sqlite3

import mlflow
import pytest
import yaml

from tests.harness import copy_project, project_env, run_dvc


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_dvc_repro_smoke_builds_every_stage_once(tmp_path):
    project = copy_project(tmp_path)
    env = project_env(project)
    stages = list(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])

    run_dvc(project, "repro", env=env, timeout=3000)

    status = run_dvc(project, "status", env=env)
    assert "up to date" in status.stdout
    for name, stage in yaml.safe_load((project / "dvc.yaml").read_text())["stages"].items():
        for out in stage.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            assert (project / path).exists(), f"{name} did not write {path}"

    # Prefect ran each stage as a flow (its database lives in the copy's PREFECT_HOME).
    with sqlite3.connect(project / ".prefect" / "prefect.db") as db:
        flows = {row[0] for row in db.execute(
            "SELECT flow.name FROM flow_run JOIN flow ON flow_run.flow_id = flow.id "
            "WHERE flow_run.state_type = 'COMPLETED'")}
    assert set(stages) <= flows

    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    # One run per stage execution; training phases log into child runs of their stage's run.
    runs = [run for run in mlflow.search_runs(experiment_names=["omicsforge"], output_format="list")
            if "mlflow.parentRunId" not in run.data.tags]
    by_stage = {}
    for run in runs:
        by_stage.setdefault(run.data.tags["stage"], []).append(run)
    assert sorted(by_stage) == sorted(stages)
    for stage, stage_runs in by_stage.items():
        assert len(stage_runs) == 1, f"{stage} ran {len(stage_runs)} times"
        run = stage_runs[0]
        assert run.info.status == "FINISHED"
        assert run.data.tags["profile"] == "smoke"
        assert run.data.params["base.profile"] == "smoke"
        assert run.data.metrics, f"{stage} logged no metrics"

    # nothing cut silently: over-long SFT chats are dropped and counted, never truncated; every
    # offline GRPO group is whole; evaluate counts the completions that reached its budget
    import json
    sft = json.loads((project / "reports/sft/metrics.json").read_text())["phases"]
    for phase in sft.values():
        assert phase["chats_dropped"] == 0  # TRL left no chat without trained tokens
        assert sum(phase["dropped_per_family"].values()) == phase["dropped_overlength"]
        assert phase["trained_chats"] > 0 and phase["chats_in_data"] > phase["dropped_overlength"]
    grpo = json.loads((project / "reports/grpo/metrics.json").read_text())
    assert grpo["offline"]["groups_over_max_length"] == 0
    evaluate = json.loads((project / "reports/evaluate/metrics.json").read_text())
    assert evaluate["max_new_tokens"] >= max(p["reply_tokens_max"] for p in sft.values())
    assert all({"completions_at_limit", "not_generated_prompt_too_long"} <= set(c)
               for c in evaluate["checkpoints"].values())

    again = run_dvc(project, "repro", env=env)
    assert "Data and pipelines are up to date." in again.stdout
    after = mlflow.search_runs(experiment_names=["omicsforge"], output_format="list")
    assert len([run for run in after if "mlflow.parentRunId" not in run.data.tags]) == len(runs)
