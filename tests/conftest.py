"""Test-wide settings: offline hub, a private Prefect home and MLflow store per session."""
import os
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch):
    """A throwaway MLflow store: tests never write to the project's own mlflow.db."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # default artifact root ./mlruns lands in tmp_path too
    return uri
