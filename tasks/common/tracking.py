"""MLflow tracking: one run per stage execution, tagged so a run can be traced back to its inputs.

The store lives inside the project (``sqlite:///<project>/mlflow.db``, artifacts in
``<project>/mlartifacts``) unless ``MLFLOW_TRACKING_URI`` points elsewhere (an ``mlflow server``).
The URI is absolute because ``dvc exp run --temp`` runs stages in another folder.
Unit tests use :class:`NullTracker`, which has the same methods and records nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from tasks.common.params import Params

PROJECT = Path(__file__).resolve().parents[2]
EXPERIMENT = "omicsforge"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT / 'mlflow.db'}"


def artifact_location(uri: str) -> str | None:
    """Artifacts beside a SQLite store (never ``./mlruns`` of whatever folder a stage runs in);
    a tracking server chooses its own.

    >>> artifact_location("sqlite:////tmp/x/mlflow.db")
    'file:///tmp/x/mlartifacts'
    >>> artifact_location("http://127.0.0.1:5000") is None
    True
    """
    if uri.startswith("sqlite:///"):
        return (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts").as_uri()
    return None


# Tracked files the stages themselves rewrite: a `dvc repro` changes them before later stages tag
# their runs, so they do not make the checkout dirty.
PIPELINE_WRITES = ("reports/", "dvc.lock")


def git_state() -> tuple[str, bool]:
    """The commit checked out (``unknown`` outside git) and whether tracked files other than
    :data:`PIPELINE_WRITES` differ from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True,
                                text=True, check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                 cwd=PROJECT, capture_output=True, text=True).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, any(not line[3:].startswith(PIPELINE_WRITES) for line in changed)


def metric_names(metrics: Mapping[str, Any], stage: str) -> dict[str, float]:
    """The numeric leaves of ``metrics`` named ``<stage>/<key>/<key>``, the one scheme of every
    stage's run (the training children log ``<stage>/<phase>/<metric>`` the same way).

    >>> metric_names({"cells": {"cells_out": 700, "note": "x"}, "sft/loss": 1.5, "ok": True}, "textify")
    {'textify/cells/cells_out': 700.0, 'textify/sft/loss': 1.5}
    >>> metric_names({"sft/final_train_loss": 0.5}, "sft")
    {'sft/final_train_loss': 0.5}
    """
    out = {}
    for key, value in flatten(metrics, sep="/").items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key if key.startswith(f"{stage}/") else f"{stage}/{key}"] = float(value)
    return out


def flatten(d: Mapping[str, Any], prefix: str = "", sep: str = ".") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, the form MLflow params take.

    >>> flatten({"cells": {"top_k": 200}, "seed": 0})
    {'cells.top_k': 200, 'seed': 0}
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}{sep}", sep))
        else:
            out[name] = value
    return out


class NullTracker:
    """Same surface as :class:`MlflowTracker`; records nothing (unit tests, ad-hoc CLI use)."""

    run_id: str | None = None
    commit: str = "unknown"                 # the git commit the run was tagged with

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...
    def log_table(self, df: pd.DataFrame, name: str, rows: int = 10) -> None: ...
    def log_artifact(self, path: str | Path, folder: str | None = None) -> None: ...
    def log_figure(self, figure: Any, name: str) -> None: ...
    def log_text(self, text: str, name: str) -> None: ...
    def publish(self, summary: Mapping[str, Any], markdown: str = "") -> None: ...


class MlflowTracker(NullTracker):
    def __init__(self, mlflow_module: Any, run_id: str, stage: str, commit: str = "unknown"):
        self._mlflow, self.run_id, self.stage, self.commit = mlflow_module, run_id, stage, commit

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else v
                for k, v in flatten(params).items()}
        self._mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self._mlflow.log_metrics(metric_names(metrics, self.stage), step=step)

    def log_table(self, df: pd.DataFrame, name: str, rows: int = 10) -> None:
        """A sample of a table (first ``rows`` rows) as an MLflow table artifact."""
        sample = df.head(rows).copy()
        for col in sample.columns:  # MLflow tables hold JSON scalars; lists/arrays become text
            if sample[col].map(lambda v: isinstance(v, (list, dict, tuple)) or hasattr(v, "shape")).any():
                sample[col] = sample[col].map(lambda v: json.dumps(v, default=str) if not isinstance(v, str) else v)
        self._mlflow.log_table(sample, artifact_file=f"samples/{name}.json")

    def log_artifact(self, path: str | Path, folder: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self._mlflow.log_artifacts(str(path), artifact_path=folder)
        else:
            self._mlflow.log_artifact(str(path), artifact_path=folder)

    def log_figure(self, figure: Any, name: str) -> None:
        self._mlflow.log_figure(figure, f"plots/{name}")

    def log_text(self, text: str, name: str) -> None:
        self._mlflow.log_text(text, name)

    def publish(self, summary: Mapping[str, Any], markdown: str = "") -> None:
        """The stage's summary (``reports/<stage>/summary.json``, what `dvc metrics show` prints) as
        ``<stage>/summary/<name>`` metrics and, in a Prefect flow run, a markdown artifact keyed
        ``<stage>-summary`` that links the MLflow run; ``markdown`` (a table) is appended."""
        self.log_metrics({"summary": summary})
        if flow_run_id() is None:
            return
        from prefect.artifacts import create_markdown_artifact

        rows = "\n".join(f"| {k} | {v} |" for k, v in flatten(summary, sep="/").items())
        text = (f"# {self.stage}\n\nMLflow run `{self.run_id}` (experiment {EXPERIMENT}, "
                f"{tracking_uri()})\n\n| summary | value |\n|---|---|\n{rows}\n\n{markdown}")
        create_markdown_artifact(markdown=text, key=f"{self.stage}-summary",
                                 description=f"{self.stage}: summary and MLflow run")


def flow_run_id() -> str | None:
    """The Prefect flow run this code runs in, or None (a unit test, a plain call)."""
    from prefect.runtime import flow_run

    return flow_run.id or None


def name_flow_run(run_id: str | None, stage: str, commit: str, tags: list[str],
                  parameters: Mapping[str, Any]) -> None:
    """Name the Prefect flow run ``run_id`` ``<stage>-<short commit>``, add ``tags`` and show
    ``parameters`` (what the stage read from params.yaml) as its parameters: the flows take no
    arguments, so Prefect would list a random name and none."""
    if run_id is None:
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        current = client.read_flow_run(run_id)
        client.update_flow_run(run_id, name=f"{stage}-{commit[:7]}", tags=sorted({*current.tags, *tags}),
                               parameters=dict(parameters))


@contextmanager
def stage_run(stage: str, params: Params) -> Iterator[MlflowTracker]:
    """Open the MLflow run of one stage execution; params of the stage and base are logged.

    The run is tagged with the commit (``git_commit``, and ``git_dirty`` when tracked files other
    than the pipeline's own reports differ from it), the profile and, in a Prefect flow run, its id;
    the flow run is renamed ``<stage>-<short commit>`` and tagged with the stage, the profile and
    ``mlflow:<run id>``."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(EXPERIMENT) is None:
        try:
            mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location(tracking_uri()))
        except mlflow.exceptions.MlflowException as err:
            # Two stages starting together on a fresh store both see no experiment; one creates it.
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
    mlflow.set_experiment(EXPERIMENT)
    commit, dirty = git_state()
    prefect_run = flow_run_id()
    tags = {
        "stage": stage,
        "git_commit": commit,
        "git_dirty": str(dirty).lower(),
        "params_hash": params.section_hash(stage),
        "profile": params.base.profile,
    }
    if prefect_run:
        tags["prefect_flow_run_id"] = str(prefect_run)
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    logged = {"base": params.base.model_dump(mode="json"), stage: getattr(params, stage).model_dump(mode="json")}
    with mlflow.start_run(run_name=stage, tags=tags, log_system_metrics=True) as run:
        tracker = MlflowTracker(mlflow, run.info.run_id, stage, commit)
        name_flow_run(prefect_run, stage, commit,
                      [stage, f"profile:{params.base.profile}", f"mlflow:{run.info.run_id}"], logged)
        tracker.log_params(logged)
        yield tracker
