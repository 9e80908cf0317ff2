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


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT, capture_output=True, text=True).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, the form MLflow params and metrics take.

    >>> flatten({"cells": {"top_k": 200}, "seed": 0})
    {'cells.top_k': 200, 'seed': 0}
    """
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class NullTracker:
    """Same surface as :class:`MlflowTracker`; records nothing (unit tests, ad-hoc CLI use)."""

    run_id: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None: ...
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...
    def log_table(self, df: pd.DataFrame, name: str, rows: int = 10) -> None: ...
    def log_artifact(self, path: str | Path, folder: str | None = None) -> None: ...
    def log_figure(self, figure: Any, name: str) -> None: ...
    def log_text(self, text: str, name: str) -> None: ...


class MlflowTracker(NullTracker):
    def __init__(self, mlflow_module: Any, run_id: str):
        self._mlflow, self.run_id = mlflow_module, run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = {k: json.dumps(v) if isinstance(v, (list, dict)) else v
                for k, v in flatten(params).items()}
        self._mlflow.log_params({k: str(v)[:6000] for k, v in flat.items()})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        numeric = {k: float(v) for k, v in flatten(metrics).items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        self._mlflow.log_metrics(numeric, step=step)

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


@contextmanager
def stage_run(stage: str, params: Params) -> Iterator[MlflowTracker]:
    """Open the MLflow run of one stage execution; params of the stage and base are logged."""
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
    tags = {
        "stage": stage,
        "git_commit": _git_commit(),
        "params_hash": params.section_hash(stage),
        "profile": params.base.profile,
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    with mlflow.start_run(run_name=stage, tags=tags, log_system_metrics=True) as run:
        tracker = MlflowTracker(mlflow, run.info.run_id)
        section = getattr(params, stage).model_dump(mode="json")
        tracker.log_params({"base": params.base.model_dump(mode="json"), stage: section})
        yield tracker

