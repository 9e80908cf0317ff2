import json

import numpy as np
import pandas as pd

from tasks.problems.cells import genes_of
from tasks.problems.instruction import cell_problems, dna_problems, protein_problems
from tests.problems_fixtures import cell_table, dna_table


def _tagged(prompt, tag):
    return prompt.split(f"<{tag}>")[1].split(f"</{tag}>")[0]


def test_answers_recomputed_from_the_prompt():
    cells, dna = cell_table(4), dna_table(20)
    proteins = pd.DataFrame({"protein_id": ["p1", "p2", "p3", "p4"],
                             "sequence": ["MKKLLA", "MAAAW", "MCCCCQ", "MKW"]})
    proteins["length"] = proteins["sequence"].str.len()
    split_of = {**{f"cell:{c}": "train" for c in cells["cell_id"]},
                **{f"dna:{w}": "train" for w in dna["window_id"]},
                **{f"protein:{p}": "test" for p in proteins["protein_id"]}}
    rng = np.random.default_rng(0)
    rows = (cell_problems(cells, 12, split_of, rng) + dna_problems(dna, 20, 40, [0.45, 0.55], split_of, rng)
            + protein_problems(proteins, 4, 400, split_of, rng))
    kinds = set()
    for r in rows:
        ev = json.loads(r["evidence"])
        kinds.add(ev["kind"])
        if ev["kind"] == "cell_top_gene":
            assert r["answer"] == genes_of("<cell>" + _tagged(r["prompt"], "cell") + "</cell>")[0]
        elif ev["kind"] == "cell_gene_rank":
            genes = genes_of("<cell>" + _tagged(r["prompt"], "cell") + "</cell>")
            assert genes[int(r["answer"]) - 1] == ev["gene"]
        elif ev["kind"] == "dna_length":
            assert int(r["answer"]) == len(_tagged(r["prompt"], "dna"))
        elif ev["kind"] == "dna_gc_bucket":
            seq = _tagged(r["prompt"], "dna")
            gc = (seq.count("G") + seq.count("C")) / len(seq)
            assert r["answer"] == ("below 45%" if gc < 0.45 else "above 55%" if gc >= 0.55 else "45% to 55%")
        elif ev["kind"] == "protein_residue_count":
            assert int(r["answer"]) == _tagged(r["prompt"], "protein").count(ev["residue"])
        elif ev["kind"] == "protein_length":
            assert int(r["answer"]) == len(_tagged(r["prompt"], "protein"))
    assert len(kinds) == 7
    present = [r["answer"] for r in rows if json.loads(r["evidence"])["kind"] == "cell_gene_present"]
    assert set(present) == {"yes", "no"}
