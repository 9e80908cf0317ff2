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
    rows = (cell_problems(cells, 12, split_of, rng) + dna_problems(dna, 20, 40, [0.45, 0.55], split_of, rng, 2)
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


def test_dna_length_every_sets_the_mix_and_keeps_gc_answers_balanced():
    # one repeat per GC bucket, so every cut (40 bases or more) stays in its window's bucket
    repeats = {"low": "AAT", "mid": "ACGT", "high": "GGC"}
    dna = pd.DataFrame([{"window_id": f"{name}{i}:0-240", "sequence": (unit * 240)[:240]}
                        for name, unit in repeats.items() for i in range(10)])
    split_of = {f"dna:{w}": "train" for w in dna["window_id"]}
    for every, lengths in ((3, 4), (4, 3), (1, 12)):
        rows = dna_problems(dna, 12, 40, [0.45, 0.55], split_of, np.random.default_rng(0), every)
        kinds = [json.loads(r["evidence"])["kind"] for r in rows]
        assert kinds.count("dna_length") == lengths and len(rows) == 12
        answers = pd.Series([r["answer"] for r, k in zip(rows, kinds) if k == "dna_gc_bucket"])
        if every > 1:
            counts = answers.value_counts()
            assert len(counts) == 3 and counts.max() - counts.min() <= 1, (every, counts)
