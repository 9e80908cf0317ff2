import json
from types import SimpleNamespace

import numpy as np
import pandas as pd

from tasks.problems.clinical import (Ontology, biomni_answer, causal_gene_problems, matches_biomni,
                                     rare_disease_problems, sample_patient)

P = SimpleNamespace(diseases=10, genes=10, min_phenotypes=4, max_phenotypes=6, drop_fraction=0.3,
                    unrelated_phenotypes=2)


def _tables():
    # a flat ontology: root HP:0000001 with 60 leaf terms
    ids = [f"HP:{i:07d}" for i in range(1, 62)]
    terms = pd.DataFrame({"id": ids, "name": [f"term {i}" for i in range(61)],
                          "definition": "", "synonyms": [[]] * 61,
                          "parents": [[]] + [["HP:0000001"]] * 60})
    rng = np.random.default_rng(0)
    rows, genes, gp = [], [], []
    for d in range(12):
        n = 3 if d == 11 else 6  # the last disease has fewer phenotypes than asked
        for t in rng.choice(ids[1:], size=n, replace=False):
            rows.append({"disease_id": f"OMIM:{100000 + d}", "source": "OMIM",
                         "disease_name": f"Disease {d}", "hpo_id": t})
            gp.append({"gene_symbol": f"GENE{d}", "gene_id": d, "hpo_id": t})
        genes.append({"disease_id": f"OMIM:{100000 + d}", "gene_symbol": f"GENE{d}"})
    return terms, pd.DataFrame(rows), pd.DataFrame(genes), pd.DataFrame(gp)


def test_patient_drops_and_adds_unrelated_terms():
    terms, dp, _, _ = _tables()
    onto = Ontology(terms)
    disease = sorted(dp[dp["disease_id"] == "OMIM:100000"]["hpo_id"])
    kept, unrelated = sample_patient(disease, 0.5, 10, 3, list(terms["id"][1:]), onto,
                                     np.random.default_rng(0))
    assert len(kept) == 3 and set(kept) <= set(disease)
    assert len(unrelated) == 3 and not set(unrelated) & set(disease)
    assert "HP:0000001" not in unrelated  # the root is an ancestor of every term: related


def test_rare_disease_skips_small_diseases_and_answer_has_most_overlap():
    terms, dp, _, _ = _tables()
    split_of = {f"disease:{d}": "train" for d in dp["disease_id"].unique()}
    rows, stats = rare_disease_problems(dp, Ontology(terms), split_of, P, 4, np.random.default_rng(0))
    assert stats["diseases_below_min_phenotypes"] == 1 and len(rows) == 10
    for r in rows:
        ev = json.loads(r["evidence"])
        overlap = ev["candidate_overlap"]
        assert all(overlap[r["answer"]] > v for c, v in overlap.items() if c != r["answer"])
        assert ev["biomni_answer"] == biomni_answer(r["answer"])
        assert matches_biomni(json.dumps(ev["biomni_answer"]), r["answer"])
        assert not matches_biomni('{"OMIM_ID": "1"}', r["answer"])


def test_causal_gene_candidates_are_genes_and_answer_is_the_disease_gene():
    terms, dp, dg, gp = _tables()
    split_of = {f"gene:{g}": "test" for g in gp["gene_symbol"].unique()}
    rows, _ = causal_gene_problems(dp, dg, gp, Ontology(terms), split_of, P, 4, np.random.default_rng(0))
    assert rows
    for r in rows:
        ev = json.loads(r["evidence"])
        assert r["answer"] == ev["gene"] == f"GENE{int(ev['disease_id'].split(':')[1]) - 100000}"
        assert all(c.startswith("GENE") for c in r["choices"]) and r["split"] == "test"
