import mlflow
import pandas as pd

from tasks.common.params import parse_params
from tasks.common.tracking import NullTracker, stage_run


def test_stage_run_tags_params_metrics_and_samples(mlflow_uri, monkeypatch):
    monkeypatch.setenv("DVC_EXP_NAME", "exp-1")
    params = parse_params({"base": {"seed": 3}})
    with stage_run("base", params) as run:
        run.log_metrics({"counts": {"cells": 5}, "flag": True})
        run.log_table(pd.DataFrame({"a": [[1, 2]], "b": ["x"]}), "sample")
    got = mlflow.get_run(run.run_id)
    assert got.data.tags["stage"] == "base"
    assert got.data.tags["dvc_exp_name"] == "exp-1"
    assert len(got.data.tags["params_hash"]) == 12 and got.data.tags["git_commit"]
    assert got.data.params["base.seed"] == "3"
    assert got.data.metrics == {"counts.cells": 5.0}  # booleans are not metrics
    artifacts = [a.path for a in mlflow.MlflowClient().list_artifacts(run.run_id, "samples")]
    assert artifacts == ["samples/sample.json"]


def test_null_tracker_has_the_same_surface():
    from tasks.common.tracking import MlflowTracker

    public = {n for n in dir(MlflowTracker) if not n.startswith("_")}
    assert public <= set(dir(NullTracker))
