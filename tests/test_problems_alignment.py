import json

import numpy as np
from Bio.Seq import Seq

from tasks.problems.alignment import dna_to_protein_problems, find_genes

GENOME = "pyrodigal:tests/data/GCF_001457455.1_NCTC11397_genomic_100kb.fna.gz"


def test_translation_with_table_11_picks_exactly_the_answer():
    genes, stats = find_genes([GENOME], 11, 150, 750)
    assert len(genes) > 20 and stats["translation_mismatch"] == 0
    split_of = {f"cds:{g}": "train" for g in genes["gene_id"]}
    rows, _ = dna_to_protein_problems(genes, split_of, 20, 11, 0.15, 4, np.random.default_rng(0))
    assert len(rows) >= 15
    for r in rows:
        cds = r["prompt"].split("<dna>")[1].split("</dna>")[0]
        protein = f"<protein>{Seq(cds).translate(table=11, cds=True)}</protein>"
        assert [c == protein for c in r["choices"]].count(True) == 1 and r["answer"] == protein
        n = len(protein)
        assert all(abs(len(c) - n) <= 0.15 * n + 1 for c in r["choices"])
        assert json.loads(r["evidence"])["codon_table"] == 11
