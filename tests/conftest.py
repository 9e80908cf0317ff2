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


def pytest_collection_modifyitems(config, items):
    """Skip `@pytest.mark.gpu` tests where torch sees no CUDA device (torch imported only then)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; torch.cuda.is_available() is False")
    for item in gpu_items:
        item.add_marker(skip)
