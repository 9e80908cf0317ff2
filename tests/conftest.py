"""Test-wide settings: offline hub, a private Prefect home and MLflow store per session."""
import os
import tempfile
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Flows the tests run in-process record to a Prefect home of their own, never to the project's
# database that `make prefect-server` shows (set before anything imports Prefect).
os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="omicsforge-prefect-tests-")


@pytest.fixture()
def mlflow_uri(tmp_path, monkeypatch):
    """A throwaway MLflow store: tests never write to the project's own mlflow.db."""
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # default artifact root ./mlruns lands in tmp_path too
    # MLflow remembers the active experiment id across stores; a run started without naming an
    # experiment must land in this store's, not in an id left over from an earlier test.
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("tests")
    return uri


def toy_texts(n: int = 300, seed: int = 0) -> list[str]:
    """Small biology-flavoured documents (genes, phenotypes, tagged sequences) for tiny models."""
    import random

    rng = random.Random(seed)
    genes = ["CD3D", "CD8A", "MS4A1", "LYZ", "NKG7", "GNLY", "FCGR3A", "CST3", "PPBP", "IL7R"]
    terms = ["seizure", "ataxia", "hypotonia", "cataract", "short stature", "scoliosis"]
    docs = []
    for i in range(n):
        cell = ", ".join(rng.sample(genes, 5))
        dna = "".join(rng.choice("ACGT") for _ in range(24))
        protein = "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(16))
        docs.append(f"Disease {i} presents with {rng.choice(terms)} and {rng.choice(terms)}. "
                    f"<cell>{cell}</cell> <dna>{dna}</dna> <protein>{protein}</protein> "
                    f"<think>gene {rng.choice(genes)} is expressed</think><answer>yes</answer>")
    return docs


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A built base model (2 layers, hidden 64, head_dim 32 as vLLM on CPU needs) and tokenizer trained on :func:`toy_texts`."""
    from tasks.lm.modeling import save_base
    from tasks.common.params import BaseModelParams

    out = tmp_path_factory.mktemp("models") / "base"
    params = BaseModelParams(vocab_size=600, layers=2, hidden=64, heads=2, kv_heads=1,
                             intermediate=64, max_positions=512)
    save_base(params, out, toy_texts(), seed=0)
    return out, params


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
