"""The formats users hold (CELLxGENE-style .h5ad, 10x .h5 and matrix.mtx folders), the scverse
conventions (layers, a var column of symbols) and the refusals, each in one line."""
from __future__ import annotations

import gzip

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp
from pydantic import ValidationError
from typer.testing import CliRunner

from tasks.cli import app
from tasks.common.errors import InputError
from tasks.common.params import Cells
from tasks.textify.cells import write_cell_sentences
from tasks.textify.readers import open_cells

SYMBOLS = ["CD3E", "CD3D", "MS4A1", "CD79A", "LYZ", "CST3", "NKG7", "GNLY", "PPBP", "IL7R"]
IDS = [f"ENSG{j:011d}" for j in range(len(SYMBOLS))]


def counts(n_cells: int = 24, seed: int = 0) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    x = sp.random(n_cells, len(SYMBOLS), density=0.6, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(1, 40, k)).astype(np.float32)
    x[np.arange(n_cells), np.arange(n_cells) % len(SYMBOLS)] = 50  # no empty cell
    return sp.csr_matrix(x)


def obs(n: int) -> pd.DataFrame:
    return pd.DataFrame({"cell_type": pd.Categorical(np.array(["T", "B", "NK"])[np.arange(n) % 3]),
                         "donor": [f"d{i % 2}" for i in range(n)]},
                        index=[f"AAACCTGAG{i:06d}-1" for i in range(n)])


def cellxgene(path, x: sp.csr_matrix) -> str:
    """Shaped like a CELLxGENE download: Ensembl ids as var_names, symbols in feature_name, counts
    in layers['counts'], log-normalised values in X, no raw."""
    norm = x.multiply(1e4 / x.sum(axis=1)).tocsr()
    norm.data = np.log1p(norm.data)
    var = pd.DataFrame({"feature_name": pd.Categorical(SYMBOLS), "feature_biotype": "gene",
                        "feature_length": np.arange(len(SYMBOLS)) * 100 + 500}, index=IDS)
    adata = anndata.AnnData(X=norm.astype(np.float32), obs=obs(x.shape[0]), var=var,
                            layers={"counts": x.copy()})
    adata.write_h5ad(path)
    return str(path)


def plain(path, x: sp.csr_matrix) -> str:
    """The same counts with symbols as var_names: what the CELLxGENE file must give."""
    anndata.AnnData(X=x.copy(), obs=obs(x.shape[0]), var=pd.DataFrame(index=SYMBOLS)).write_h5ad(path)
    return str(path)


def tenx_h5(path, x: sp.csr_matrix) -> str:
    """Cell Ranger v3 .h5: a genes x cells CSC matrix, i.e. the cells x genes CSR arrays."""
    with h5py.File(path, "w") as f:
        m = f.create_group("matrix")
        m["barcodes"] = np.array(obs(x.shape[0]).index, dtype="S")
        m["data"], m["indices"], m["indptr"] = x.data.astype(np.int32), x.indices, x.indptr
        m["shape"] = np.array([x.shape[1], x.shape[0]], dtype=np.int32)
        feats = m.create_group("features")
        feats["id"], feats["name"] = np.array(IDS, dtype="S"), np.array(SYMBOLS, dtype="S")
        feats["feature_type"] = np.array(["Gene Expression"] * len(IDS), dtype="S")
        feats["genome"] = np.array(["GRCh38"] * len(IDS), dtype="S")
    return str(path)


def tenx_mtx(folder, x: sp.csr_matrix) -> str:
    folder.mkdir()
    with gzip.open(folder / "matrix.mtx.gz", "wb") as fh:
        scipy.io.mmwrite(fh, sp.coo_matrix(x.T.astype(np.int64)), field="integer")
    with gzip.open(folder / "features.tsv.gz", "wt") as fh:
        fh.writelines(f"{i}\t{s}\tGene Expression\n" for i, s in zip(IDS, SYMBOLS))
    with gzip.open(folder / "barcodes.tsv.gz", "wt") as fh:
        fh.writelines(f"{b}\n" for b in obs(x.shape[0]).index)
    return str(folder)


def sentences(source: str, out, backed: bool = True, **kw) -> pd.DataFrame:
    cfg = Cells(**{"source": source, "top_k": 4, "chunk_size": 7, "use_raw": False, **kw})
    with open_cells(source, cfg, backed=backed) as cm:
        write_cell_sentences(cm, out, cfg, seed=0)
    return pd.read_parquet(out)


@pytest.mark.parametrize("backed", [True, False])
def test_cellxgene_file_gives_symbols_ranked_from_its_counts(tmp_path, backed):
    x = counts()
    expected = sentences(plain(tmp_path / "plain.h5ad", x), tmp_path / "a.parquet", label_key="cell_type")
    got = sentences(cellxgene(tmp_path / "cxg.h5ad", x), tmp_path / "b.parquet", backed=backed,
                    layer="counts", gene_symbols="feature_name", label_key="cell_type")
    pd.testing.assert_frame_equal(got, expected)
    assert got["cell_sentence"].str.contains("ENSG").sum() == 0 and got["label"].notna().all()


@pytest.mark.parametrize("backed", [True, False])
@pytest.mark.parametrize("settings,problem", [
    ({"use_raw": True}, r"cxg\.h5ad: raw: missing: use_raw is set .* layer: \['counts'\]"),
    ({}, r"cxg\.h5ad: X var_names: Ensembl ids \('ENSG00000000000', \.\.\.\) would be written .*"
         r"--gene-symbols\): \['feature_name'\]"),
    ({"gene_symbols": "feature_name"}, r"cxg\.h5ad: cell 'AAACCTGAG000000-1' \(row 0\): value [0-9.]+ at "
                                       r"gene '\w+' in X is not a count: .* layers: \['counts'\]"),
    ({"layer": "count", "gene_symbols": "feature_name"}, r"layers: no layer 'count'; layers: \['counts'\]"),
    ({"layer": "counts", "gene_symbols": "symbol"},
     r"layers\['counts'\] var: no column 'symbol' \(gene_symbols\); columns: \['feature_name', "),
    ({"layer": "counts", "gene_symbols": "feature_name", "label_key": "celltype"},
     r"obs: no column 'celltype' \(label_key/obs_keys\)"),
])
def test_cellxgene_file_refusals_name_what_exists(tmp_path, backed, settings, problem):
    src = cellxgene(tmp_path / "cxg.h5ad", counts())
    with pytest.raises(InputError, match=problem) as err:
        sentences(src, tmp_path / "o.parquet", backed=backed, **settings)
    assert "\n" not in str(err.value) and not (tmp_path / "o.parquet").exists()


def test_normalised_values_are_ranked_when_told_so(tmp_path):
    x = counts()
    src = cellxgene(tmp_path / "cxg.h5ad", x)
    got = sentences(src, tmp_path / "o.parquet", gene_symbols="feature_name", expect_counts=False)
    expected = sentences(plain(tmp_path / "plain.h5ad", x), tmp_path / "a.parquet")
    assert got["cell_sentence"].tolist() == expected["cell_sentence"].tolist()  # same order per cell


def test_layer_and_raw_together_is_a_params_error():
    with pytest.raises(ValidationError, match="layer 'counts' and use_raw: true name two matrices"):
        Cells(source="x.h5ad", layer="counts")


def test_10x_h5_and_mtx_folder_give_the_same_sentences_as_the_h5ad(tmp_path):
    x = counts()
    expected = sentences(plain(tmp_path / "plain.h5ad", x), tmp_path / "a.parquet")
    for source in (tenx_h5(tmp_path / "filtered_feature_bc_matrix.h5", x),
                   tenx_mtx(tmp_path / "filtered_feature_bc_matrix", x)):
        got = sentences(source, tmp_path / "b.parquet")
        assert got["cell_sentence"].tolist() == expected["cell_sentence"].tolist(), source
        assert got["cell_id"].tolist() == expected["cell_id"].tolist()


def test_integer_count_matrix_is_accepted_backed(tmp_path):
    x = counts()
    ints = anndata.AnnData(X=sp.csr_matrix(x.astype(np.int32)), obs=obs(x.shape[0]),
                           var=pd.DataFrame(index=SYMBOLS))
    ints.write_h5ad(tmp_path / "ints.h5ad")
    got = sentences(str(tmp_path / "ints.h5ad"), tmp_path / "b.parquet")
    expected = sentences(plain(tmp_path / "plain.h5ad", x), tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(got, expected)


def test_backed_file_reads_only_the_obs_columns_asked_for(tmp_path):
    src = plain(tmp_path / "c.h5ad", counts())
    with h5py.File(src, "a") as f:  # break a column nobody asks for: reading it would fail
        del f["obs/donor"]
    got = sentences(src, tmp_path / "o.parquet", label_key="cell_type")
    assert len(got) == 24
    with pytest.raises(InputError, match="no column 'donor'"):
        sentences(src, tmp_path / "o.parquet", obs_keys=["donor"])


def test_duplicate_cell_ids_in_a_backed_file(tmp_path):
    x = counts()
    cells = obs(x.shape[0])
    cells.index = [*cells.index[:-1], cells.index[3]]
    anndata.AnnData(X=x, obs=cells, var=pd.DataFrame(index=SYMBOLS)).write_h5ad(tmp_path / "d.h5ad")
    with pytest.raises(InputError, match=r"cell 'AAACCTGAG000003-1': duplicate cell id"):
        sentences(str(tmp_path / "d.h5ad"), tmp_path / "o.parquet")


def test_cli_cellxgene_file_and_one_line_refusals(tmp_path):
    runner = CliRunner()
    src, out = cellxgene(tmp_path / "cxg.h5ad", counts()), tmp_path / "o.parquet"
    ok = runner.invoke(app, ["textify", "cells", src, str(out), "--layer", "counts",
                             "--gene-symbols", "feature_name", "--label-key", "cell_type"])
    assert ok.exit_code == 0, ok.output
    assert "CD3E" in "".join(pd.read_parquet(out)["cell_sentence"]) and str(out) in ok.stdout
    before = out.read_bytes()
    for args, words in [(["--layer", "nope"], "no layer 'nope'; layers: ['counts']"),
                        (["--no-raw"], "would be written into the sentences"),
                        (["--layer", "counts", "--raw"], "name two matrices"),
                        (["--layer", "counts", "--gene-symbols", "feature_name", "--min-genes", "99"],
                         "none passed QC")]:
        res = runner.invoke(app, ["textify", "cells", src, str(out), *args])
        lines = res.stderr.strip().splitlines()
        assert res.exit_code == 2 and len(lines) == 1 and words in lines[0], (args, res.stderr)
        assert out.read_bytes() == before


def test_cli_10x_h5_and_mtx_folder_without_flags(tmp_path):
    runner = CliRunner()
    x = counts()
    expected = sentences(plain(tmp_path / "plain.h5ad", x), tmp_path / "a.parquet", top_k=200)
    for source in (tenx_h5(tmp_path / "filtered_feature_bc_matrix.h5", x),
                   tenx_mtx(tmp_path / "filtered_feature_bc_matrix", x)):
        res = runner.invoke(app, ["textify", "cells", source, str(tmp_path / "o.parquet")])
        assert res.exit_code == 0, res.output
        got = pd.read_parquet(tmp_path / "o.parquet")
        assert got["cell_sentence"].tolist() == expected["cell_sentence"].tolist(), source
