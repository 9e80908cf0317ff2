import json

import numpy as np
import pandas as pd
import pytest

from tasks.common import schemas
from tasks.common.errors import InputError
from tasks.problems.dna import best_relative, classes, pssm_of, relative_at, tf_binding_problems
from tasks.common.storage import read_table
from tests.problems_fixtures import dna_table, motif_table


def test_tf_binding_label_confirmed_by_pssm_and_distractors_from_other_classes():
    motifs = motif_table()
    split_of = {f"motif:{m}": "train" for m in motifs["motif_id"]}
    rows, stats = tf_binding_problems(motifs, dna_table(), split_of, 10, 80, 0.8, 0.05, 3, 20,
                                      np.random.default_rng(0))
    assert stats["unknown_class_skipped"] == 1 and len(rows) == 6
    by_name = motifs.set_index("tf_name")
    for r in rows:
        ev = json.loads(r["evidence"])
        seq = r["prompt"].split("<dna>")[1].split("</dna>")[0]
        true = by_name.loc[r["answer"]]
        site = relative_at(pssm_of(true["pfm"]), seq, ev["site_position"], ev["site_strand"])
        assert site >= 0.8 and abs(site - ev["site_relative_score"]) < 1e-3
        for option in r["choices"]:
            if option == r["answer"]:
                continue
            other = by_name.loc[option]
            assert not classes(other["tf_class"]) & classes(true["tf_class"])
            assert best_relative(pssm_of(other["pfm"]), seq)[0] < site - 0.05


def test_tf_binding_train_windows_gives_train_motifs_several_problems_and_test_motifs_one():
    motifs = motif_table()
    test = ["M1", "M2", "M3"]  # three classes: each test motif has two distractors in its split
    split_of = {f"motif:{m}": ("test" if m in test else "train") for m in motifs["motif_id"]}
    once, _ = tf_binding_problems(motifs, dna_table(), split_of, 10, 80, 0.8, 0.05, 3, 20,
                                  np.random.default_rng(0))
    rows, stats = tf_binding_problems(motifs, dna_table(), split_of, 10, 80, 0.8, 0.05, 3, 20,
                                      np.random.default_rng(0), train_windows=3)
    assert stats["problems_rejected"] == stats["motifs_without_distractors"] == 0
    per_motif = pd.Series([r["entity"] for r in rows]).value_counts()
    assert sorted(per_motif.items()) == [(f"motif:M{i}", 1 if i <= 3 else 3) for i in range(1, 7)]
    assert len({r["id"] for r in rows}) == len(rows) == 3 + 3 * 3 == len(once) + 2 * 3
    # each copy its own window: no two problems of a motif show the same sequence
    assert len({r["prompt"] for r in rows}) == len(rows)
    # the first copy of each motif keeps the id (and draws) of train_windows=1
    assert rows[0]["id"] == once[0]["id"] and rows[0]["prompt"] == once[0]["prompt"]
    # a motif alone in its split has no distractors: counted once (not once a window) and
    # skipped, not a crash
    alone = {f"motif:{m}": ("train" if m == "M1" else "test") for m in motifs["motif_id"]}
    rows, stats = tf_binding_problems(motifs, dna_table(), alone, 10, 80, 0.8, 0.05, 3, 20,
                                      np.random.default_rng(0), train_windows=3)
    assert stats["motifs_without_distractors"] == 1
    assert {r["split"] for r in rows} == {"test"} and "motif:M1" not in {r["entity"] for r in rows}


def test_pfm_rows_not_summing_to_one_fail_at_read(tmp_path):
    motifs = motif_table()
    motifs.at[0, "pfm"] = [[0.5, 0.5, 0.5, 0.5]] * 10
    motifs.to_parquet(tmp_path / "motifs.parquet")
    with pytest.raises(InputError, match="pfm rows"):
        read_table(tmp_path / "motifs.parquet", schemas.Motifs)
