"""Evaluate stage helpers: problem selection, SFT-identical prompts, scoring, PerturbQA AUROC."""
import json

import numpy as np
import pandas as pd
import pytest

from tasks.evaluate import biomni_eval
from tasks.evaluate import scoring as ev
from tasks.evaluate.report import report_markdown, subset_baselines
from tests.evaluate_fixtures import problems


def test_select_test_caps_families_and_keeps_whole_perturb_genes():
    p = problems(per_split=12)
    chosen = ev.select_test(p, cap=5, seed=0)
    assert set(chosen["split"]) == {"test"}
    counts = chosen["family"].value_counts()
    assert counts["cell_type"] == 5 and counts["rare_disease"] == 5
    for fam in ev.PERTURB:
        part = chosen[chosen["family"] == fam]
        keys = part["evidence"].map(lambda e: (json.loads(e)["cell_line"], json.loads(e)["gene"]))
        full = p[(p["family"] == fam) & (p["split"] == "test")]
        full_keys = full["evidence"].map(lambda e: (json.loads(e)["cell_line"], json.loads(e)["gene"]))
        for key in set(keys):  # every chosen gene comes with all its test pairs
            assert (keys == key).sum() == (full_keys == key).sum()
        assert len(part) >= 5
    assert chosen.equals(ev.select_test(p, cap=5, seed=0))  # seeded
    assert len(ev.select_test(p, cap=None, seed=0)) == (p["split"] == "test").sum()


def test_score_completions_reads_the_answer_tag_only():
    test = ev.select_test(problems(), cap=None, seed=0)
    test = test[test["family"] == "cell_type"].head(3).reset_index(drop=True)
    gold = test["answer"].tolist()
    completions = [f"<think>markers</think>\n<answer>{gold[0].upper()}</answer>",  # right, case-folded
                   f"the answer is {gold[1]}",                                      # no tag: no answer
                   "<think>x</think><answer>Platelet</answer> trailing"]            # wrong, bad format
    scored = ev.score_completions(test, completions, [5, 6, 7], "answer")
    assert scored["correct"].tolist() == [True, False, False]
    assert scored["format_ok"].tolist() == [True, False, False]
    assert scored["extracted"].tolist()[1] is None
    metrics = ev.family_metrics(scored)["cell_type"]
    assert metrics["accuracy"] == pytest.approx(1 / 3, abs=1e-4) and metrics["mean_completion_tokens"] == 6
    assert 0 <= metrics["macro_f1"] <= 1


def test_answer_prefixes_stop_right_after_the_answer_tag():
    prefixes, forced = ev.answer_prefixes(["P1 ", "P2 "], ["<think>a</think><answer>yes</answer>",
                                                          "<think>cut off"], "answer")
    assert prefixes == ["P1 <think>a</think><answer>", "P2 <think>cut off<answer>"]
    assert forced == [False, True]


def test_perturb_auroc_is_per_gene_then_per_line():
    evidence = [json.dumps({"cell_line": line, "gene": g, "label": lab})
                for line, g, lab in [("k562", "A", 0), ("k562", "A", 1), ("k562", "B", 0),
                                     ("k562", "B", 1), ("rpe1", "A", 1), ("rpe1", "A", 0)]]
    result = ev.perturb_auroc(evidence, [0.1, 0.9, 0.8, 0.2, 0.7, 0.3])
    assert result["per_line"]["k562"]["auroc"] == 0.5 and result["per_line"]["rpe1"]["auroc"] == 1.0
    assert result["auroc"] == 0.75


def test_baselines_and_table_on_the_evaluated_problems():
    p = problems()
    test = ev.select_test(p, cap=None, seed=0)
    base = subset_baselines(p, test)
    assert set(base["majority"]) == set(test["family"]) and set(base["neighbour_auroc"]) == set(ev.PERTURB)
    scored = ev.score_completions(test, ["<think>t</think><answer>yes</answer>"] * len(test),
                                  [3] * len(test), "answer")
    fam = ev.family_metrics(scored)
    metrics = {"profile": "smoke", "max_new_tokens": 8, "answer_tag": "answer",
               "problems": test["family"].value_counts().to_dict(), "baselines": base,
               "checkpoints": {"sft": {"families": fam, "mean_accuracy": 0.2, "format_rate": 1.0,
                                       "mean_completion_tokens": 3.0,
                                       "perturbqa": {"perturb_de": {"auroc": 0.5}},
                                       "biomni": {"rare_disease_diagnosis": {"n": 8, "reward": 0.0}}}}}
    table = report_markdown(metrics)
    assert "| perturb_de | " in table and "majority" in table and "rare_disease_diagnosis" in table
    assert table.count("\n| mean over families |") == 1


def test_biomni_form_matches_our_scoring():
    pred = pd.DataFrame([
        {"checkpoint": "sft", "problem_id": "r1", "family": "rare_disease",
         "answer": "Mirage syndrome (OMIM:617053)", "claimed": "Mirage syndrome (OMIM:617053)"},
        {"checkpoint": "sft", "problem_id": "r2", "family": "rare_disease",
         "answer": "Mirage syndrome (OMIM:617053)", "claimed": "Marfan syndrome (OMIM:154700)"},
        {"checkpoint": "sft", "problem_id": "g1", "family": "causal_gene", "answer": "ISCA2",
         "claimed": "isca2"},
        {"checkpoint": "sft", "problem_id": "g2", "family": "causal_gene", "answer": "ISCA2",
         "claimed": None}])
    scored = biomni_eval.score_table(biomni_eval.to_biomni(pred))
    assert scored["reward"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert json.loads(scored["answer"][0]) == {"disease_name": "Mirage syndrome", "OMIM_ID": "OMIM:617053"}
    with pytest.raises(ValueError, match="no scoring rule"):
        biomni_eval.score("gwas_variant_prioritization", "rs1", "rs1")


def test_macro_f1_counts_unreadable_answers_as_misses():
    assert ev.macro_f1(["a", "a", "b"], ["a", "a", "b"]) == 1.0
    assert np.isclose(ev.macro_f1(["a", "b"], [None, None]), 0.0)


def test_names_an_option_counts_multiple_choice_answers_that_are_one_of_the_options():
    test = pd.DataFrame({"id": ["p0", "p1", "p2", "p3"], "family": ["causal_gene"] * 3 + ["perturb_de"],
                         "answer_type": ["multiple_choice"] * 3 + ["yes_no"],
                         "answer": ["ISCA2", "ISCA2", "GPD1", "yes"],
                         "choices": [["GPD1", "ISCA2"]] * 3 + [[]]})
    replies = ["<answer> ISCA2</answer>", "<answer> CLIS1</answer>", "<answer>A</answer>", "<answer>yes</answer>"]
    scored = ev.score_completions(test, replies, [3, 3, 3, 3], "answer")
    assert scored["claimed"].tolist()[:3] == ["ISCA2", None, "GPD1"]  # a letter names its option
    metrics = ev.family_metrics(scored)
    assert metrics["causal_gene"]["names_an_option"] == pytest.approx(2 / 3, abs=1e-4)
    assert "names_an_option" not in metrics["perturb_de"]  # no options to name
