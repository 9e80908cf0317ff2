"""The textify flow end to end (Prefect + MLflow), and a failed run keeping the earlier outputs."""
from __future__ import annotations

import json

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from tasks.common.errors import run_stage


def _params(tmp_path, protein_source: str, **cells) -> None:
    rng = np.random.default_rng(0)
    x = sp.random(30, 25, density=0.5, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(1, 9, k)).astype(np.float32)
    obs = pd.DataFrame({"kind": pd.Categorical(["a", "b", "c"] * 10)}, index=[f"c{i}" for i in range(30)])
    adata = anndata.AnnData(x, obs=obs, var=pd.DataFrame(index=[f"G{j}" for j in range(25)]))
    adata.raw = adata.copy()
    adata.write_h5ad(tmp_path / "cells.h5ad")
    params = {
        "base": {"seed": 0, "profile": "default"},
        "textify": {
            "cells": {"source": "cells.h5ad", "label_key": "kind", "obs_keys": ["kind"], "top_k": 10,
                      "chunk_size": 8, "min_genes": 5, **cells},
            "dna": {"sources": ["pyhmmer:tests/data/seqs/bmyD.fna"], "window": 100, "stride": 100},
            "proteins": {"sources": [protein_source]},
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture
def textify(tmp_path, monkeypatch):
    """The textify flow, run in ``tmp_path`` with its own MLflow store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from flows.textify import textify

    return textify


@pytest.mark.slow
def test_flow_writes_outputs_and_a_failed_run_keeps_them(tmp_path, textify):
    _params(tmp_path, "pyhmmer:tests/data/seqs/LuxC.faa")
    metrics = textify()
    cells = pd.read_parquet("data/textify/cells.parquet")
    assert len(cells) == metrics["cells"]["cells_out"] > 0
    assert cells["cell_sentence"].str.startswith("<cell>").all()
    assert len(pd.read_parquet("data/textify/dna.parquet")) == metrics["dna"]["windows"] == 12
    assert len(pd.read_parquet("data/textify/proteins.parquet")) == 12
    saved = json.loads((tmp_path / "reports/textify/metrics.json").read_text())
    assert saved["cells"]["cells_in"] == 30 and set(saved) == {"cells", "dna", "proteins"}
    hist = pd.read_csv("reports/textify/lengths.csv")
    assert list(hist.columns) == ["modality", "length", "count"]
    assert hist.groupby("modality")["count"].sum().to_dict() == {
        "cells": len(cells), "dna": 12, "proteins": 12}
    before = {p.name: p.read_bytes() for p in (tmp_path / "data/textify").iterdir()}

    (tmp_path / "bad.faa").write_text(">p1\nMKV\n>p2\nMK-V\n")
    _params(tmp_path, "bad.faa")
    with pytest.raises(SystemExit) as exit_:
        run_stage(textify)
    assert exit_.value.code == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "data/textify").iterdir()} == before


@pytest.mark.slow
def test_flow_reads_a_cellxgene_file_with_params_only(tmp_path, textify):
    """What `dvc repro textify` runs, set up in params.yaml alone: the counts layer, the symbols."""
    from tests.test_readers import SYMBOLS, cellxgene, counts

    cellxgene(tmp_path / "cxg.h5ad", counts())
    _params(tmp_path, "pyhmmer:tests/data/seqs/LuxC.faa", source="cxg.h5ad", use_raw=False, layer="counts",
            gene_symbols="feature_name", label_key="cell_type", obs_keys=["donor"], min_genes=1)
    metrics = textify()
    cells = pd.read_parquet("data/textify/cells.parquet")
    assert metrics["cells"]["cells_out"] == len(cells) == 24
    genes = set(", ".join(cells["cell_sentence"].str.slice(6, -7)).split(", "))
    assert genes <= set(SYMBOLS) and cells["obs_donor"].notna().all()


@pytest.mark.slow
def test_dask_runner_writes_the_same_file_as_the_local_run(tmp_path, textify):
    """textify.runner: dask on a local cluster of 2 worker processes, one task per chunk."""
    _params(tmp_path, "pyhmmer:tests/data/seqs/LuxC.faa")
    local = textify()
    before = (tmp_path / "data/textify/cells.parquet").read_bytes()
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["textify"].update(runner="dask", dask_workers=2)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    distributed = textify()
    assert (tmp_path / "data/textify/cells.parquet").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "data/textify").iterdir()) == [
        "cells.parquet", "dna.parquet", "proteins.parquet"]
    for key in ("cells_in", "cells_out", "dropped", "genes_per_sentence", "text_chars"):
        assert distributed["cells"][key] == local["cells"][key], key
