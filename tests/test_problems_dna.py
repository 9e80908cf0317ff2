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


def test_pfm_rows_not_summing_to_one_fail_at_read(tmp_path):
    motifs = motif_table()
    motifs.at[0, "pfm"] = [[0.5, 0.5, 0.5, 0.5]] * 10
    motifs.to_parquet(tmp_path / "motifs.parquet")
    with pytest.raises(InputError, match="pfm rows"):
        read_table(tmp_path / "motifs.parquet", schemas.Motifs)
