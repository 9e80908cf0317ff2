import json

import numpy as np
import pandas as pd
import pytest

from tasks.common import schemas
from tasks.common.errors import InputError
from tasks.problems.perturb import neighbour_scores, perturb_problems, prompt_for
from tasks.common.storage import read_table


def _pairs(seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for line in ("k562", "rpe1"):
        for i in range(30):
            split = "test" if i < 8 else "train"
            for g in range(12):
                rows.append({"cell_line": line, "task": "de", "pert": f"P{i}", "gene": f"G{g}",
                             "label": int(rng.random() < 0.3), "split": split})
                rows.append({"cell_line": line, "task": "dir", "pert": f"P{i}", "gene": f"G{g}",
                             "label": int(rng.random() < 0.5), "split": split})
    return pd.DataFrame(rows)


def test_families_keep_split_balance_train_and_pair_test_by_gene():
    pairs = _pairs()
    rows, counts = perturb_problems(pairs, 20, 4, 4, np.random.default_rng(0))
    df = pd.DataFrame(rows)
    assert set(counts) == {"k562-de", "k562-dir", "rpe1-de", "rpe1-dir"}
    ev = df["evidence"].map(json.loads)
    truth = pairs.set_index(["cell_line", "task", "pert", "gene"])
    for r, e in zip(df.itertuples(), ev):
        t = truth.loc[(e["cell_line"], e["task"], e["pert"], e["gene"])]
        assert r.split == t["split"] and e["label"] == t["label"]
        assert r.answer in (("yes", "no") if e["task"] == "de" else ("up", "down"))
    test = df[df["split"] == "test"].assign(gene=ev.map(lambda e: (e["cell_line"], e["task"], e["gene"])))
    assert (test.groupby("gene")["answer"].nunique() == 2).all()
    train = df[(df["split"] == "train") & (df["family"] == "perturb_de")]
    assert abs((train["answer"] == "yes").mean() - 0.5) < 0.05


def test_neighbour_scores_use_knockdowns_that_moved_the_pert():
    de = pd.DataFrame({"pert": ["Q1", "Q1", "Q2", "Q2"], "gene": ["P", "G", "P", "G"],
                       "label": [1, 1, 0, 0]})
    out = neighbour_scores(de, de, pd.DataFrame({"pert": ["P"], "gene": ["G"], "label": [1]}))
    assert out["score"].iloc[0] == 1.0 and out["n_neighbours"].iloc[0] == 1


def test_wording():
    assert prompt_for("de", "hepg2", "AAMP", "TP53").startswith("In HepG2 cells, a CRISPRi knockdown of AAMP")


def test_bad_perturbqa_tables_are_clear_errors(tmp_path):
    pairs = _pairs().head(10)
    pairs.assign(label=2).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match="label"):
        read_table(tmp_path / "bad.parquet", schemas.PerturbPairs)
    pairs.drop(columns="split").to_parquet(tmp_path / "missing.parquet")
    with pytest.raises(InputError, match="split"):
        read_table(tmp_path / "missing.parquet", schemas.PerturbPairs)
