import json

import numpy as np

from tasks.problems.cells import cell_type_problems, genes_of
from tests.problems_fixtures import cell_table, marker_table


def test_cell_type_variants_answers_and_evidence():
    cells = cell_table(6)
    split_of = {f"cell:{c}": "train" for c in cells["cell_id"]}
    rows, skipped = cell_type_problems(cells, marker_table(), split_of, 4, 4, np.random.default_rng(0))
    assert {r["answer_type"] for r in rows} == {"multiple_choice", "label", "gene_set"}
    label_of = dict(zip(cells["cell_id"], cells["label"]))
    sentence_of = dict(zip(cells["cell_id"], cells["cell_sentence"]))
    for r in rows:
        cell = r["source_ids"][0]
        ev = json.loads(r["evidence"])
        assert ev["cell_type"] == label_of[cell] and sentence_of[cell] in r["prompt"]
        if r["answer_type"] == "multiple_choice":
            assert r["answer"] == label_of[cell] and r["answer"] in r["choices"]
            assert len(set(r["choices"])) == 4
        elif r["answer_type"] == "gene_set":
            genes = genes_of(sentence_of[cell])
            markers = set(marker_table().query("cell_type == @label_of[@cell]")["gene"])
            assert r["answer"] == ", ".join(g for g in genes if g in markers)
        assert "<answer>" not in r["prompt"] and "<think>" not in r["prompt"]
    assert skipped["no_marker_in_sentence"] == 0


def test_per_type_cap():
    cells = cell_table(8)
    split_of = {f"cell:{c}": "test" for c in cells["cell_id"]}
    rows, _ = cell_type_problems(cells, marker_table(), split_of, 3, 4, np.random.default_rng(0))
    assert len({r["entity"] for r in rows}) == 15  # 5 types x 3 cells
