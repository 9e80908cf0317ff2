"""The Prefect deployment of prefect.yaml, end to end, against a real server on loopback.

``prefect deploy --all`` from a copy of the project, a process worker on the ``omicsforge`` pool,
a run of deployment ``pipeline/repro`` triggered through the REST API (what the UI's "Run" does)
with ``targets=["corpus"]`` on the smoke profile. Afterwards DVC must agree the pipeline is built
(``dvc status corpus`` clean, ``dvc.lock`` records the stage) and the stage's own flow run must be
in the same Prefect server, because the stage ran as DVC's child, not behind its back.
"""
import subprocess
import time

import mlflow
import pytest
import yaml

from tests.harness import (VENV_BIN, api, copy_project, prefect_server, project_env, run_dvc,
                           start, stop)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _prefect(project, env, *args):
    proc = subprocess.run([str(VENV_BIN / "prefect"), *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, f"prefect {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _wait_for(url, flow_run_id, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api(url, "GET", f"/flow_runs/{flow_run_id}")
        if run["state_type"] in TERMINAL:
            return run
        time.sleep(2)
    raise AssertionError(f"flow run {flow_run_id} not finished after {timeout} s: {run['state_type']}")


def _flow_runs_of(url, flow_name):
    return api(url, "POST", "/flow_runs/filter", {"flows": {"name": {"any_": [flow_name]}}})


def test_deployment_runs_dvc_repro_and_leaves_the_lock_up_to_date(tmp_path):
    project = copy_project(tmp_path)
    deployments = {d["name"] for d in yaml.safe_load((project / "prefect.yaml").read_text())["deployments"]}
    assert deployments == {"repro", "experiment"}

    with prefect_server(tmp_path / "prefect-server") as server:
        url, env = server["PREFECT_API_URL"], project_env(project, **server)
        _prefect(project, env, "work-pool", "create", "omicsforge", "--type", "process")
        _prefect(project, env, "deploy", "--all", "--no-prompt")
        worker_log = tmp_path / "worker.log"
        worker = start([str(VENV_BIN / "prefect"), "worker", "start", "--pool", "omicsforge",
                        "--name", "test-worker"], cwd=project, env=env, log=worker_log)
        try:
            deployment = api(url, "GET", "/deployments/name/pipeline/repro")
            assert deployment["global_concurrency_limit"]["limit"] == 1
            assert [s["active"] for s in deployment["schedules"]] == [False]
            started = time.monotonic()
            run = api(url, "POST", f"/deployments/{deployment['id']}/create_flow_run",
                      {"parameters": {"targets": ["corpus"]}})
            run = _wait_for(url, run["id"], timeout=600)
            elapsed = time.monotonic() - started
        finally:
            stop(worker)
        assert run["state_type"] == "COMPLETED", worker_log.read_text()[-5000:]
        stage_runs = _flow_runs_of(url, "corpus")
    print(f"deployment run of `dvc repro corpus` (smoke): {elapsed:.0f} s")

    # The stage's flow ran under DVC, reporting to the same server as the deployment's flow.
    assert [r["state_type"] for r in stage_runs] == ["COMPLETED"]
    status = run_dvc(project, "status", "corpus")
    assert "up to date" in status.stdout, status.stdout
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock["stages"]["corpus"]["outs"][0]["path"] == "data/corpus"
    # and its MLflow run landed in the project's store, where the worker's environment pointed.
    mlflow.set_tracking_uri(env["MLFLOW_TRACKING_URI"])
    runs = mlflow.search_runs(experiment_names=["omicsforge"], filter_string="tags.stage = 'corpus'")
    assert len(runs) == 1 and (runs["status"] == "FINISHED").all()
