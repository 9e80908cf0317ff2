import json

import numpy as np
import pandas as pd

from tasks.corpus.knowledge import hmm_dir, protein_families
from tasks.problems.proteins import family_hits, family_members, load_hmms, protein_family_problems


def test_members_hit_only_their_family_and_problems_cite_hmmer():
    families = protein_families()
    hmms = load_hmms(families, hmm_dir())
    empty = pd.DataFrame(columns=["protein_id", "length", "sequence"])
    members, stats = family_members(empty, hmms, 2, 1000, 1e-5, True, 0, np.random.default_rng(0))
    assert (members.groupby("family").size() == 2).all() and len(members) == 2 * len(families)
    assert (members["origin"] == "hmm_emitted").all()
    rehit = family_hits(hmms, list(members["protein_id"]), list(members["sequence"]), 1e-5)
    assert all(set(rehit[i]) == {f} for i, f in zip(members["protein_id"], members["family"]))
    split_of = {f"protein:{p}": "train" for p in members["protein_id"]}
    rows = protein_family_problems(members, families, split_of, 4, np.random.default_rng(0))
    for r in rows:
        ev = json.loads(r["evidence"])
        assert list(ev["hmmer_hits"]) == [r["answer"]] and r["answer"] in r["choices"]
        assert len(ev["choices_without_hit"]) == 3


def test_multi_family_real_sequences_are_filtered():
    families = protein_families()
    hmms = load_hmms(families, hmm_dir())
    members, _ = family_members(pd.DataFrame(columns=["protein_id", "length", "sequence"]), hmms, 1,
                                1000, 1e-5, True, 1, np.random.default_rng(1))
    a, b = members.iloc[0], members.iloc[5]
    fused = pd.DataFrame({"protein_id": ["fused"], "sequence": [a["sequence"] + b["sequence"]]})
    fused["length"] = fused["sequence"].str.len()
    _, stats = family_members(fused, hmms, 1, 5000, 1e-5, False, 1, np.random.default_rng(1))
    assert stats["real_multi_family_filtered"] == 1
