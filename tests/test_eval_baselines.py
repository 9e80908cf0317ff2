"""Non-LM baselines on small synthetic problem frames: fitted on train only, scored on test."""
import json

import numpy as np
import pandas as pd
import pytest

from tasks.evaluate.baselines import (baseline_table, cell_type_logreg, chance, correctness, majority,
                                      options_of, perturb_gene_rate, phenotype_name_overlap,
                                      protein_kmer_logreg, tf_class_kmer)

MARKERS = {"T cell": ["CD3D", "CD3E", "IL7R"], "B cell": ["MS4A1", "CD79A", "CD19"],
           "NK cell": ["NKG7", "GNLY", "KLRD1"]}
FILLER = ["ACTB", "B2M", "MALAT1", "TMSB4X", "EEF1A1", "RPL13", "RPS27", "FTL"]


def row(pid, family, answer_type, answer, split, prompt="q", choices=(), evidence=None):
    return {"id": pid, "family": family, "answer_type": answer_type, "answer": answer, "split": split,
            "prompt": prompt, "choices": list(choices), "evidence": json.dumps(evidence or {})}


def cell_frame(n_per_type=12, seed=0):
    rng = np.random.default_rng(seed)
    types = sorted(MARKERS)
    rows = []
    for t in types:
        for i in range(n_per_type):
            genes = list(rng.permutation(FILLER)[:4]) + MARKERS[t][:2]
            genes = [genes[k] for k in rng.permutation(len(genes))]
            prompt = f"Here is a cell sentence.\n<cell>{', '.join(genes)}</cell>\nWhich cell type?"
            split = "test" if i % 3 == 0 else "train"
            if i % 2:
                others = [o for o in types if o != t]
                choices = [others[0], t, others[1]] if i % 3 else [t, *others]
                rows.append(row(f"{t}-{i}", "cell_type", "multiple_choice", t, split, prompt, choices,
                                {"cell_type": t}))
            else:
                rows.append(row(f"{t}-{i}", "cell_type", "label", t, split, prompt,
                                evidence={"cell_type": t}))
    return pd.DataFrame(rows)


def test_cell_type_logreg_learns_markers_and_ignores_other_families():
    df = cell_frame()
    other = pd.DataFrame([row("x1", "rare_disease", "json", "{}", "test")])
    train, test = df[df["split"] == "train"], pd.concat([df[df["split"] == "test"], other])
    pred = cell_type_logreg(train, test)
    assert list(pred.index) == list(test.index)
    assert pred.iloc[-1] is None
    cells = test["family"] == "cell_type"
    assert (pred[cells] == test.loc[cells, "answer"]).all()
    for p, choices, kind in zip(pred[cells], test.loc[cells, "choices"], test.loc[cells, "answer_type"]):
        assert kind != "multiple_choice" or p in choices


def test_protein_kmer_logreg_separates_compositions():
    rng = np.random.default_rng(0)
    alphabets = {"kinase": "KKKRRDE", "globin": "LLAVVGG"}
    rows = []
    for fam, letters in alphabets.items():
        for i in range(10):
            seq = "".join(rng.choice(list(letters), 40))
            choices = ["kinase", "globin"] if i % 2 else ["globin", "kinase"]
            rows.append(row(f"{fam}{i}", "protein_family", "multiple_choice", fam,
                            "test" if i < 3 else "train", f"Which family?\n<protein>{seq}</protein>", choices))
    df = pd.DataFrame(rows)
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    assert (protein_kmer_logreg(train, test) == test["answer"]).all()


# two TF classes, each with its own core motif and its own name stem; test TFs are new names
TF_CLASSES = {"GATA factors": ("GATA", "AGATAAGA"), "Basic helix-loop-helix factors": ("HEY", "CCACGTGG")}


def tf_row(pid, split, tf, cls, other_tf, other_cls, rng, reverse=False, first=True):
    site = TF_CLASSES[cls][1]
    if reverse:  # planted on the other strand
        site = site.translate(str.maketrans("ACGT", "TGCA"))[::-1]
    background = "".join(rng.choice(list("ACGT"), 40))
    window = background[:15] + site + background[15:]
    choices = [tf, other_tf] if first else [other_tf, tf]
    evidence = {"tf_name": tf, "tf_class": cls, "distractors": [{"tf_name": other_tf, "tf_class": other_cls}]}
    return row(pid, "tf_binding", "multiple_choice", tf, split,
               f"Which factor?\n<dna>{window}</dna>\nA. {choices[0]}\nB. {choices[1]}", choices, evidence)


def test_tf_class_kmer_carries_a_class_over_to_unseen_factors_on_either_strand():
    rng = np.random.default_rng(0)
    (gata, (g_stem, _)), (bhlh, (h_stem, _)) = TF_CLASSES.items()
    rows = []
    for i in range(12):
        cls, other = (gata, bhlh) if i % 2 else (bhlh, gata)
        stem, other_stem = TF_CLASSES[cls][0], TF_CLASSES[other][0]
        rows.append(tf_row(f"t{i}", "train", f"{stem}{i}", cls, f"{other_stem}{i + 20}", other, rng,
                           reverse=i % 3 == 0, first=i % 4 < 2))
    test = [tf_row("x1", "test", f"{g_stem}9", gata, f"{h_stem}9", bhlh, rng, reverse=True),
            tf_row("x2", "test", f"{h_stem}7", bhlh, f"{g_stem}7", gata, rng, first=False),
            row("c1", "cell_type", "label", "T cell", "test")]
    train, test = pd.DataFrame(rows), pd.DataFrame(test)
    picks = tf_class_kmer(train, test)
    assert list(picks) == [f"{g_stem}9", f"{h_stem}7", None]
    # one class in train: nothing to carry over, the baseline abstains
    one = train[train["answer"].str.startswith(g_stem)]
    assert list(tf_class_kmer(one, test)) == [None, None, None]


def perturb_frame():
    rows, k = [], 0
    for gene, positives in (("G1", 4), ("G2", 1)):
        for j in range(5):  # G1: 4/5 positive in train; G2: 1/5
            label = int(j < positives)
            rows.append(row(f"p{k}", "perturb_dir", "label", "up" if label else "down", "train",
                            evidence={"cell_line": "k562", "pert": f"P{j}", "gene": gene, "label": label}))
            k += 1
    for gene, answer in (("G1", "up"), ("G1", "down"), ("G2", "down"), ("G3", "up")):
        rows.append(row(f"p{k}", "perturb_dir", "label", answer, "test",
                        evidence={"cell_line": "k562", "pert": "PX", "gene": gene,
                                  "label": int(answer == "up")}))
        k += 1
    return pd.DataFrame(rows)


def test_perturb_gene_rate_uses_the_genes_training_pairs():
    df = perturb_frame()
    train, test = df[df["split"] == "train"], df[df["split"] == "test"]
    pred = perturb_gene_rate(train, test)
    # G1 rate 0.8 -> up, G2 rate 0.2 -> down, unseen G3 -> the line's rate 0.5 -> family 0.5 -> down
    assert list(pred) == ["up", "up", "down", "down"]
    assert list(correctness(test, pred, options_of(train, test))) == [True, False, True, False]


def test_majority_and_chance():
    train = pd.DataFrame([
        row("t1", "tf_binding", "multiple_choice", "B", "train", choices=["A", "B", "C"]),
        row("t2", "tf_binding", "multiple_choice", "E", "train", choices=["D", "E", "F"]),
        row("t3", "tf_binding", "multiple_choice", "G", "train", choices=["G", "H", "I"]),
        row("t4", "perturb_de", "yes_no", "no", "train"),
        row("t5", "perturb_de", "yes_no", "no", "train"),
        row("t6", "perturb_de", "yes_no", "yes", "train")])
    test = pd.DataFrame([
        row("s1", "tf_binding", "multiple_choice", "X", "test", choices=["Y", "X", "Z"]),
        row("s2", "perturb_de", "yes_no", "yes", "test"),
        row("s3", "cell_type", "gene_set", "CD3D", "test")])
    assert list(majority(train, test)) == ["X", "no", None]  # position 1; label "no"; open answer
    first, again = chance(train, test, seed=3), chance(train, test, seed=3)
    assert list(first) == list(again) and first.iloc[2] is None
    assert first.iloc[0] in ["Y", "X", "Z"] and first.iloc[1] in ["yes", "no"]


def test_baseline_table_reports_every_family_with_intervals():
    problems = pd.concat([cell_frame(), perturb_frame(),
                          pd.DataFrame([row("g1", "cell_type", "gene_set", "CD3D", "test"),
                                        row("g2", "cell_type", "gene_set", "CD3D", "train")])],
                         ignore_index=True)
    table = baseline_table(problems)
    assert set(table["family"]) == {"cell_type", "perturb_dir"}
    cell = table[table["family"] == "cell_type"].set_index("baseline")
    assert set(cell.index) == {"chance", "majority", "cell_type_logreg"}
    assert (cell["not_scorable"] == 1).all() and (cell["n_test"] == cell["scored"] + 1).all()
    assert cell.loc["cell_type_logreg", "accuracy"] == 1.0
    assert (table["low"] <= table["accuracy"]).all() and (table["accuracy"] <= table["high"]).all()
    dir_ = table[table["family"] == "perturb_dir"].set_index("baseline")
    assert dir_.loc["perturb_gene_rate", "accuracy"] == pytest.approx(0.5)
    assert dir_.loc["chance", "expected_chance"] == 0.5


def test_baseline_table_by_answer_type():
    table = baseline_table(cell_frame(), by=("family", "answer_type"))
    logreg = table[table["baseline"] == "cell_type_logreg"].set_index("answer_type")
    assert set(logreg.index) == {"label", "multiple_choice"}
    assert logreg.loc["label", "expected_chance"] == pytest.approx(1 / 3)  # the train label set
    assert logreg.loc["multiple_choice", "expected_chance"] == pytest.approx(1 / 3)


def disease_row(pid, phenotypes, choices, answer, split="test"):
    lines = "\n".join(f"- {name} (HP:{i:07d})" for i, name in enumerate(phenotypes))
    prompt = (f"A patient presents with the following phenotypes (HPO terms):\n{lines}\n"
              "Which disease is the most likely diagnosis?")
    return row(pid, "rare_disease", "multiple_choice", answer, split, prompt, choices)


def test_phenotype_name_overlap_picks_the_disease_named_after_the_patients_phenotypes():
    diseases = ["Achromatopsia 3, autosomal recessive (OMIM:262300)",
                "Amyotrophic lateral sclerosis 2, juvenile (OMIM:205100)",
                "Spastic paraplegia 30, autosomal recessive (OMIM:610357)"]
    test = pd.DataFrame([
        disease_row("d1", ["Achromatopsia", "Photophobia", "Autosomal recessive inheritance"],
                    diseases, diseases[0]),
        # the inheritance words name every recessive disease alike: they break no tie
        disease_row("d2", ["Spasticity", "Paraplegia", "Autosomal recessive inheritance"],
                    diseases, diseases[2]),
        row("c1", "cell_type", "label", "T cell", "test")])
    picks = phenotype_name_overlap(test.iloc[:0], test)
    assert list(picks) == ["A", "C", None]  # long options are answered by their letter
    assert list(correctness(test, picks, options_of(test.iloc[:0], test)))[:2] == [True, True]
    # nothing shared: a seeded pick among all the options, the same for the same seed
    blank = pd.DataFrame([disease_row(f"b{i}", ["Fever"], diseases, diseases[0]) for i in range(30)])
    first = phenotype_name_overlap(blank.iloc[:0], blank, seed=1)
    assert list(first) == list(phenotype_name_overlap(blank.iloc[:0], blank, seed=1))
    assert set(first) == {"A", "B", "C"}
