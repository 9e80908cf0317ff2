"""Cell sentences: ranking against a slow reference, chunking, backed files, bad input, the CLI."""
from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from tasks.cli import app
from tasks.common.errors import InputError
from tasks.common.params import Cells
from tasks.textify.ranking import STATUS_NAMES, rank_cells, sentences, tie_ranks
from tasks.textify.cells import write_cell_sentences
from tasks.textify.readers import looks_transposed, open_cells


def counts_matrix(n_cells: int, n_genes: int, density: float, seed: int) -> sp.csr_matrix:
    """Small integer counts: plenty of ties, some explicit zeros stored, float32 like an h5ad."""
    rng = np.random.default_rng(seed)
    x = sp.random(n_cells, n_genes, density=density, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.integers(0, 6, k)).astype(np.float32)
    x.data[::7] = 0  # explicit zeros: stored, never ranked
    return x


def reference_top(x: sp.csr_matrix, tie_rank: np.ndarray, k: int) -> list[list[int]]:
    """The slow, obvious ranking: value descending, then tie rank, positive values only."""
    out = []
    for row in x.toarray():
        order = np.lexsort((tie_rank, -row))
        out.append([int(g) for g in order if row[g] > 0][:k])
    return out


def make_adata(x: sp.csr_matrix, genes=None, cells=None, raw: bool = True) -> anndata.AnnData:
    n, g = x.shape
    obs = pd.DataFrame({"cell_type": pd.Categorical(np.array(["T", "B", "NK"])[np.arange(n) % 3]),
                        "depth": np.arange(n, dtype=float)},
                       index=cells if cells is not None else [f"cell{i}" for i in range(n)])
    var = pd.DataFrame(index=genes if genes is not None else [f"G{j}" for j in range(g)])
    adata = anndata.AnnData(X=x.copy(), obs=obs, var=var)
    if raw:
        adata.raw = adata.copy()
    return adata


def cfg(**kw) -> Cells:
    return Cells(**{"source": "unused", "label_key": "cell_type", "obs_keys": ["depth"],
                    "top_k": 5, **kw})


def sentences_of(path) -> pd.DataFrame:
    return pd.read_parquet(path)


@pytest.mark.parametrize("seed,k,density", [(0, 5, 0.3), (1, 3, 0.6), (2, 50, 0.2), (3, 1, 0.9)])
def test_top_k_matches_slow_reference(seed, k, density):
    x = counts_matrix(60, 40, density, seed)
    x.data[x.data == 0] = 0
    expected_rows = [i for i in range(60) if (x[i].toarray() > 0).any()]
    tie = tie_ranks(40, seed)
    ref = reference_top(x, tie, k)
    r = rank_cells(x.copy(), tie, k)
    for i in expected_rows:
        assert r.top[i, :r.n_top[i]].tolist() == ref[i]
        assert (r.top[i, r.n_top[i]:] == -1).all()


def test_ties_are_broken_by_the_seed_and_deterministically():
    x = sp.csr_matrix(np.ones((2, 30), np.float32))
    first = rank_cells(x.copy(), tie_ranks(30, 0), 10).top
    assert (rank_cells(x.copy(), tie_ranks(30, 0), 10).top == first).all()
    other = rank_cells(x.copy(), tie_ranks(30, 1), 10).top
    assert not (other == first).all()
    assert first[0].tolist() == np.argsort(tie_ranks(30, 0))[:10].tolist()


def test_larger_values_beat_the_tie_break():
    x = sp.csr_matrix(np.array([[1, 1, 9, 1]], np.float32))
    assert rank_cells(x, np.array([0, 1, 2, 3]), 2).top.tolist() == [[2, 0]]


def test_long_rows_take_the_sampled_cutoff_path():
    # rows with far more expressed genes than 2 * top_k use a sampled cutoff: same answer
    x = counts_matrix(20, 3000, 0.5, 7)
    tie = tie_ranks(3000, 7)
    r = rank_cells(x.copy(), tie, 200)
    assert [r.top[i, :r.n_top[i]].tolist() for i in range(20)] == reference_top(x, tie, 200)


@pytest.mark.parametrize("k", [1, 17, 150, 900])
def test_distinct_values_and_every_row_length(k):
    # values with few ties (normalised data ranked as it is) and rows of 1 to some 500 genes: the
    # select and sort of the keys at every size, short ranges to deep ones
    rng = np.random.default_rng(k)
    dense = rng.random((40, 1000)) * (rng.random((40, 1000)) < 0.5)
    dense *= np.arange(1000) < rng.integers(2, 1000, (40, 1))  # row i: genes below a random n_i
    dense[:3] = 0
    dense[0, 7], dense[1, 3:8], dense[2, 100:117] = 1.0, rng.random(5), rng.random(17)
    x = sp.csr_matrix(dense.astype(np.float32))
    x.data[::5] = np.round(x.data[::5], 1)  # some ties too
    tie = tie_ranks(1000, k)
    r = rank_cells(x.copy(), tie, k)
    assert [r.top[i, :r.n_top[i]].tolist() for i in range(40)] == reference_top(x, tie, k)
    assert np.diff(x.indptr)[:3].tolist() == [1, 5, 17] and np.diff(x.indptr).max() > 400


def test_top_values_are_log1p_of_normalize_total_and_input_is_untouched():
    x = sp.csr_matrix(np.array([[1, 3, 0, 6], [0, 2, 0, 0]], np.float32))
    before = x.data.copy()
    r = rank_cells(x, np.arange(4), 2, target_sum=100, with_values=True)
    np.testing.assert_allclose(r.values[0], np.log1p(np.array([6, 3]) * 10.0), rtol=1e-6)
    np.testing.assert_allclose(r.values[1], [np.log1p(100.0), np.nan], rtol=1e-6)
    np.testing.assert_array_equal(x.data, before)
    assert rank_cells(x, np.arange(4), 2).values.shape == (0, 2)


def test_top_values_column_follows_the_sentence(tmp_path):
    x = sp.csr_matrix(np.array([[1, 3, 0, 6], [0, 2, 0, 0]], np.float32))
    path = tmp_path / "cells.h5ad"
    make_adata(x).write_h5ad(path)
    c = Cells(source=str(path), use_raw=False, top_k=3, target_sum=100, top_values=True)
    out = tmp_path / "cells.parquet"
    with open_cells(str(path), c) as cm:
        write_cell_sentences(cm, out, c, seed=0)
    table = pd.read_parquet(out)
    assert [len(v) for v in table["top_values"]] == [3, 1]
    np.testing.assert_allclose(table["top_values"][0], np.log1p(np.array([6, 3, 1]) * 10.0), rtol=1e-6)


def test_sentences_wrap_and_join():
    top = np.array([[2, 0, -1], [1, -1, -1]])
    assert sentences(top, np.array([2, 1]), ["A", "B", "C"], " ").to_pylist() == \
        ["<cell>C A</cell>", "<cell>B</cell>"]


@pytest.mark.parametrize("separator", [", ", " ", "", " <and> a long separator "])
def test_sentences_match_python_joins_for_any_name_length(separator):
    # names short and long (the copy of a name and separator changes way at 16 bytes), not ASCII,
    # rows of 0, 1 and many genes, int32 indices as the ranking gives them and int64
    names = ["A", "CD3E", "MALAT1", "RP11-34P13.7", "ENSG00000167286.15", "Smad4", "β-actin", "ÄÖÜ-γδ",
             "X" * 13, "Y" * 14, "Z" * 15, "W" * 40]
    rng = np.random.default_rng(0)
    top = rng.integers(0, len(names), (300, 25)).astype(np.int32)
    n_top = rng.integers(0, 26, 300).astype(np.int32)
    n_top[:3] = [0, 1, 25]
    expected = ["<cell>" + separator.join(names[g] for g in top[i, :n_top[i]]) + "</cell>" for i in range(300)]
    assert sentences(top, n_top, names, separator).to_pylist() == expected
    assert sentences(top.astype(np.int64), n_top, names, separator).to_pylist() == expected


def test_chunked_equals_unchunked_and_backed_equals_memory(tmp_path):
    x = counts_matrix(50, 30, 0.4, 5)
    x[7] = 0  # an all-zero cell, dropped in drop mode
    x.eliminate_zeros()
    path = tmp_path / "cells.h5ad"
    make_adata(x).write_h5ad(path)
    outs = {}
    for name, chunk, backed in [("one", 1000, True), ("chunks", 7, True), ("memory", 9, False)]:
        c = cfg(chunk_size=chunk, on_bad_record="drop")
        with open_cells(str(path), c, backed=backed) as cm:
            assert (type(cm.matrix).__module__.startswith("anndata")) == backed
            counts = write_cell_sentences(cm, tmp_path / f"{name}.parquet", c, seed=3)
        outs[name] = sentences_of(tmp_path / f"{name}.parquet")
        assert counts.cells_in == 50 and counts.dropped["all_zero"] == 1
    pd.testing.assert_frame_equal(outs["one"], outs["chunks"])
    pd.testing.assert_frame_equal(outs["one"], outs["memory"])
    df = outs["one"]
    assert len(df) == 49 and "cell7" not in set(df["cell_id"])
    assert list(df.columns) == ["cell_id", "label", "n_genes", "total_counts", "cell_sentence", "obs_depth"]
    assert df["label"].tolist()[:3] == ["T", "B", "NK"]
    tie = tie_ranks(30, 3)
    ref = reference_top(x[:1], tie, 5)[0]
    assert df["cell_sentence"][0] == "<cell>" + ", ".join(f"G{g}" for g in ref) + "</cell>"


@pytest.mark.parametrize("genes,separator", [(None, ", "), (None, " · "), (["β-actin", "CD3E", "Ä1"], ", ")])
def test_sentence_lengths_are_characters(tmp_path, genes, separator):
    path = tmp_path / "cells.h5ad"
    make_adata(counts_matrix(30, 3, 0.9, 2), genes=genes).write_h5ad(path)
    c = cfg(separator=separator, on_bad_record="drop")
    with open_cells(str(path), c) as cm:
        counts = write_cell_sentences(cm, tmp_path / "o.parquet", c, seed=0)
    text = sentences_of(tmp_path / "o.parquet")["cell_sentence"]
    assert np.concatenate(counts.text_chars).tolist() == text.str.len().tolist()


def test_scanpy_dataset_source(tmp_path):
    c = Cells(source="scanpy:pbmc68k_reduced", label_key="bulk_labels", top_k=20)
    with open_cells(c.source, c) as cm:
        counts = write_cell_sentences(cm, tmp_path / "pbmc.parquet", c, seed=0)
    df = sentences_of(tmp_path / "pbmc.parquet")
    assert counts.cells_out == len(df) == 700
    assert df["label"].nunique() == 10
    assert df["cell_sentence"].str.count(", ").max() == 19


def test_qc_drops_are_counted(tmp_path):
    x = counts_matrix(40, 30, 0.3, 9)
    x.eliminate_zeros()
    path = tmp_path / "c.h5ad"
    make_adata(x).write_h5ad(path)
    n_expr = np.diff(x.indptr)
    c = cfg(min_genes=int(np.median(n_expr)))
    with open_cells(str(path), c) as cm:
        counts = write_cell_sentences(cm, tmp_path / "o.parquet", c, seed=0)
    assert counts.dropped["min_genes"] == int((n_expr < c.min_genes).sum()) > 0
    assert counts.cells_out == 40 - counts.dropped["min_genes"]


def test_mito_fraction_filter():
    x = sp.csr_matrix(np.array([[5, 1, 1], [1, 1, 1]], np.float32))
    r = rank_cells(x, np.arange(3), 2, max_mito_fraction=0.5, is_mito=np.array([True, False, False]))
    assert [STATUS_NAMES[s] for s in r.status] == ["max_mito_fraction", "kept"]


def test_mito_filter_on_or_off_gives_the_same_totals_and_genes():
    # off (1.0) skips the mitochondrial sum: the kept cells' totals, to the bit on values that
    # are not whole numbers, and their genes must be those of the filter at a fraction no cell
    # reaches
    rng = np.random.default_rng(4)
    x = sp.random(200, 3000, density=0.4, format="csr", random_state=rng, dtype=np.float32)
    x.data = (x.data * rng.choice([1e-3, 1.0, 1e3], x.nnz)).astype(np.float32)
    is_mito = rng.random(3000) < 0.005
    off = rank_cells(x, tie_ranks(3000, 0), 50, is_mito=is_mito, max_mito_fraction=1.0, with_values=True)
    on = rank_cells(x, tie_ranks(3000, 0), 50, is_mito=is_mito, max_mito_fraction=0.999, with_values=True)
    assert (on.status == 0).all() and off.total.tobytes() == on.total.tobytes()
    assert (off.top == on.top).all() and off.values.tobytes() == on.values.tobytes()


# --- bad input ----------------------------------------------------------------------------------

def _write(tmp_path, x, **kw):
    path = tmp_path / "bad.h5ad"
    make_adata(sp.csr_matrix(x), **kw).write_h5ad(path)
    return str(path)


def _run(path, tmp_path, **kw):
    c = cfg(**kw)
    with open_cells(path, c) as cm:
        return write_cell_sentences(cm, tmp_path / "out.parquet", c, seed=0)


@pytest.mark.parametrize("value,word", [(np.nan, "non-finite"), (np.inf, "non-finite"), (-1.0, "negative")])
def test_bad_values_name_file_and_cell(tmp_path, value, word):
    x = np.ones((4, 3), np.float32)
    x[2, 1] = value
    path = _write(tmp_path, x)
    with pytest.raises(InputError) as err:
        _run(path, tmp_path)
    msg = str(err.value)
    assert path in msg and "'cell2'" in msg and word in msg and "'G1'" in msg
    assert _run(path, tmp_path, on_bad_record="drop").dropped[word.replace("-", "_")] == 1


def test_kernel_counts_check_flags_what_the_numpy_check_flagged():
    # The check was numpy over the chunk (finite and not a whole number); the kernel finds the
    # same first value per row: negative fractions yes; NaN, inf, negative whole numbers no.
    x = sp.csr_matrix(np.array([[1, 2.5, 0.5, 3], [np.nan, np.inf, -2, 4], [-0.5, 1, 0, 0],
                                [1e9, 2, -np.inf, 1]], np.float32))
    assert rank_cells(x, np.arange(4), 2).first_frac.tolist() == [1, -1, 8, -1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        y = counts_matrix(30, 40, 0.3, int(rng.integers(1 << 30)))
        hit = rng.choice(y.nnz, size=int(rng.integers(0, 4)), replace=False)
        y.data[hit] = rng.choice([0.5, -0.25, 1e-3, np.nan, np.inf, -3.0, 7.0], size=hit.size)
        old = np.isfinite(y.data) & (y.data != np.floor(y.data))
        first = [next((p for p in range(y.indptr[i], y.indptr[i + 1]) if old[p]), -1) for i in range(30)]
        assert rank_cells(y, tie_ranks(40, 0), 5).first_frac.tolist() == first


@pytest.mark.parametrize("mode", ["error", "drop"])
def test_not_a_count_names_file_cell_value_and_gene_before_bad_records(tmp_path, mode):
    x = np.ones((6, 3), np.float32)
    x[3, 0] = np.nan  # a bad record first in the chunk: the fraction after it is what is reported
    x[4, 2] = 2.5
    x[5, 1] = 0.5
    path = _write(tmp_path, x)
    with pytest.raises(InputError) as err:
        _run(path, tmp_path, on_bad_record=mode, chunk_size=3)  # rows 3-5: the second chunk
    assert str(err.value) == (
        f"{path}: cell 'cell4' (row 4): value 2.5 at gene 'G2' in raw.X is not a count: the matrix "
        "looks normalised; name the counts with layer (--layer), layers: none; or set "
        "expect_counts: false (--no-expect-counts) to rank these values as they are")


def test_all_zero_cell_is_an_error_or_dropped(tmp_path):
    x = np.ones((4, 3), np.float32)
    x[1] = 0
    path = _write(tmp_path, x)
    with pytest.raises(InputError, match=r"bad\.h5ad: cell 'cell1' \(row 1\): all-zero"):
        _run(path, tmp_path)
    counts = _run(path, tmp_path, on_bad_record="drop")
    assert counts.dropped["all_zero"] == 1 and counts.cells_out == 3


def test_duplicate_gene_names(tmp_path):
    path = _write(tmp_path, np.ones((3, 3), np.float32), genes=["A", "B", "A"])
    with pytest.raises(InputError, match=r"bad\.h5ad: gene 'A': duplicate gene name"):
        _run(path, tmp_path)


def test_transposed_matrix(tmp_path):
    barcodes = ["AAACCTGAGAAACCAT-1", "AAACCTGAGAAACCGC-1", "AAACCTGAGAAACGAG-1"]
    path = _write(tmp_path, np.ones((3, 3), np.float32), genes=barcodes, cells=["ACTB", "GAPDH", "CD3E"])
    with pytest.raises(InputError, match=r"bad\.h5ad: raw\.X: looks transposed"):
        _run(path, tmp_path)
    assert looks_transposed(["ENSG00000141510", "ENSG00000012048"], ["c1", "c2"]).startswith("observation")
    assert looks_transposed(["ACTB", "GAPDH", "x"], ["c1", "c2"]).startswith("observation names include")


def test_missing_raw(tmp_path):
    path = _write(tmp_path, np.ones((3, 3), np.float32), raw=False)
    with pytest.raises(InputError, match=r"bad\.h5ad: raw: missing"):
        _run(path, tmp_path)
    assert _run(path, tmp_path, use_raw=False).cells_out == 3


def test_failed_run_leaves_earlier_output_untouched(tmp_path):
    good = tmp_path / "good.h5ad"
    make_adata(counts_matrix(10, 8, 0.8, 1)).write_h5ad(good)
    c = cfg(chunk_size=2)
    with open_cells(str(good), c) as cm:
        write_cell_sentences(cm, tmp_path / "out.parquet", c, seed=0)
    before = (tmp_path / "out.parquet").read_bytes()
    x = np.ones((10, 8), np.float32)
    x[9, 0] = np.nan  # in the last chunk: earlier chunks were already written to the temporary
    bad = _write(tmp_path, x)
    with pytest.raises(InputError):
        _run(bad, tmp_path, chunk_size=2)
    assert (tmp_path / "out.parquet").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5ad", "good.h5ad", "out.parquet"]
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 10


def test_cli_cells_ok_and_bad_input_exit_2(tmp_path):
    x = np.ones((4, 3), np.float32)
    good = tmp_path / "good.h5ad"
    make_adata(sp.csr_matrix(x)).write_h5ad(good)
    runner = CliRunner()
    ok = runner.invoke(app, ["textify", "cells", str(good), str(tmp_path / "o.parquet"), "--top-k", "2",
                             "--separator", " ", "--label-key", "cell_type", "--chunk-size", "2"])
    assert ok.exit_code == 0, ok.output
    assert sentences_of(tmp_path / "o.parquet")["cell_sentence"].str.count(" ").eq(1).all()
    x[3, 2] = -2
    bad = _write(tmp_path, x)
    res = runner.invoke(app, ["textify", "cells", bad, str(tmp_path / "o2.parquet")])
    assert res.exit_code == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cell3" in lines[0]
    assert not (tmp_path / "o2.parquet").exists()
    res = runner.invoke(app, ["textify", "cells", bad, str(tmp_path / "o2.parquet"), "--no-raw", "--drop-bad"])
    assert res.exit_code == 0 and "negative 1" in res.stdout
