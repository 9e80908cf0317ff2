"""MLflow server mode: ``scripts/mlflow_server.sh`` on loopback, two stages logging at once.

Two processes open their stage's run with ``tasks.common.tracking.stage_run`` (the pipeline's own code,
pointed at the server by ``MLFLOW_TRACKING_URI`` alone), start together and each log many metric
batches, a table and a text artifact. Both must finish without "database is locked", every step
must be stored, and artifacts must land in the server's artifact destination.
"""
import subprocess
import sys
import time

import pytest
from mlflow import MlflowClient

from tests.harness import PROJECT, free_port, project_env, start, stop, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

STEPS = 200
METRICS = 5

WRITER = f"""
import sys, time
from pathlib import Path
import pandas as pd
from tasks.common.params import load_params
from tasks.common.tracking import stage_run

stage, go = sys.argv[1], Path(sys.argv[2])
params = load_params("params.yaml")
while not go.exists():  # start together: the point is two writers at the same time
    time.sleep(0.05)
with stage_run(stage, params) as run:
    for step in range({STEPS}):
        run.log_metrics({{f"loss_{{i}}": 1.0 / (step + 1 + i) for i in range({METRICS})}}, step=step)
    run.log_table(pd.DataFrame({{"stage": [stage] * 3, "row": [0, 1, 2]}}), "rows")
    run.log_text(f"{{stage}} done", "done.txt")
print("run_id", run.run_id)
"""


def test_two_stages_log_to_the_server_at_once(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    artifacts = tmp_path / "artifacts"
    env = project_env(PROJECT, MLFLOW_PORT=str(port), MLFLOW_ARTIFACTS_DESTINATION=str(artifacts),
                      MLFLOW_BACKEND_STORE_URI=f"sqlite:///{tmp_path / 'server.db'}")
    log = tmp_path / "server.log"
    server = start([str(PROJECT / "scripts" / "mlflow_server.sh")], cwd=tmp_path, env=env, log=log)
    try:
        wait_http(f"{uri}/health", server, log, timeout=120)
        client_env = project_env(PROJECT, MLFLOW_TRACKING_URI=uri)
        go = tmp_path / "go"
        writers = {stage: subprocess.Popen([sys.executable, "-c", WRITER, stage, str(go)], cwd=PROJECT,
                                           env=client_env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
                   for stage in ("corpus", "textify")}
        time.sleep(3)  # both imported mlflow and wait at the line
        started = time.monotonic()
        go.touch()
        outputs = {stage: proc.communicate(timeout=300) for stage, proc in writers.items()}
        elapsed = time.monotonic() - started
        for stage, proc in writers.items():
            out, err = outputs[stage]
            assert "database is locked" not in out + err + log.read_text()
            assert proc.returncode == 0, f"{stage}:\n{out}\n{err[-3000:]}"
        print(f"two writers x {STEPS} metric batches of {METRICS}: {elapsed:.1f} s")

        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("omicsforge")
        assert experiment.artifact_location.startswith("mlflow-artifacts:")
        runs = client.search_runs([experiment.experiment_id])
        assert sorted(r.data.tags["stage"] for r in runs) == ["corpus", "textify"]
        for run in runs:
            assert run.info.status == "FINISHED"
            history = client.get_metric_history(run.info.run_id, f"{run.data.tags['stage']}/loss_0")  # <stage>/...
            assert [m.step for m in history] == list(range(STEPS))
            assert {a.path for a in client.list_artifacts(run.info.run_id)} >= {"done.txt", "samples"}
        # proxied artifacts: written by the server into its destination, not by the clients
        assert len(list(artifacts.rglob("done.txt"))) == 2
    finally:
        stop(server)
