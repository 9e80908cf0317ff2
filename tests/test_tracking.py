import mlflow
import pandas as pd

import flows  # noqa: F401  (Prefect settings as the stages have them)
from tasks.common.params import parse_params
from tasks.common.tracking import NullTracker, flow_run_id, git_state, stage_run


def test_stage_run_tags_params_metrics_and_samples(mlflow_uri, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    params = parse_params({"base": {"seed": 3}})
    with stage_run("base", params) as run:
        run.log_metrics({"counts": {"cells": 5}, "flag": True})
        run.log_table(pd.DataFrame({"a": [[1, 2]], "b": ["x"]}), "sample")
    got = mlflow.get_run(run.run_id)
    assert got.data.tags["stage"] == "base"
    assert got.data.tags["dvc_exp_name"] == "exp-1"
    assert len(got.data.tags["params_hash"]) == 12
    assert got.data.tags["git_commit"] == git_state()[0] and got.data.tags["git_dirty"] in ("true", "false")
    assert got.data.params["base.seed"] == "3"
    assert got.data.metrics == {"base/counts/cells": 5.0}  # one scheme, <stage>/...; booleans are not metrics
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "samples")]
    assert artifacts == ["samples/sample.json"]


def test_null_tracker_has_the_same_surface():
    from tasks.common.tracking import MlflowTracker

    public = {n for n in dir(MlflowTracker) if not n.startswith("_")}
    assert public <= set(dir(NullTracker))


def test_stage_run_in_a_prefect_flow_names_tags_and_links_it(mlflow_uri):
    from prefect import flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    params = parse_params({"base": {"seed": 3}})

    @flow(name="base")
    def stage() -> tuple[str, str]:
        with stage_run("base", params) as run:
            run.publish({"cells": 5})
        return run.run_id, str(flow_run_id())

    run_id, flow_run = stage()
    with get_client(sync_client=True) as client:
        named = client.read_flow_run(flow_run)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["base-summary"]), flow_run_id={"any_": [flow_run]}))
    assert named.name == f"base-{git_state()[0][:7]}"
    assert {"base", "profile:default", f"mlflow:{run_id}"} <= set(named.tags)
    assert named.parameters["base"]["seed"] == 3  # what the stage read from params.yaml
    got = mlflow.get_run(run_id)
    assert got.data.tags["prefect_flow_run_id"] == flow_run
    assert got.data.metrics["base/summary/cells"] == 5.0
    assert len(artifacts) == 1 and run_id in artifacts[0].data and "| cells | 5 |" in artifacts[0].data
