"""Log-likelihood option scoring: cached batch scores equal naive ones; options per answer type."""
import math

import pandas as pd
import pytest

from tasks.evaluate.loglik import (boundary_mismatches, contexts, label_sets, loglik_eval,
                                   loglik_summary, naive_scores, problem_options, score_options)

CHATS = [
    [{"role": "system", "content": "You are a biologist."},
     {"role": "user", "content": "Which cell type is this?\n<cell>CD3D, CD8A, NKG7</cell>\nA. T cell\nB. B cell"}],
    [{"role": "user", "content": "Is LYZ expressed?"}],
    [{"role": "system", "content": "You are a biologist."},
     {"role": "user", "content": "Disease presents with seizure and ataxia and hypotonia. Gene?"}],
]
OPTIONS = [["T cell", "B cell", "natural killer cell"], ["yes", "no"], ["CD3D", "MS4A1", "GNLY", "x"]]


@pytest.fixture(scope="module")
def tiny(tiny_base):
    from tasks.lm.modeling import load_model, load_tokenizer

    tokenizer = load_tokenizer(tiny_base[0])
    return load_model(tiny_base[0], tokenizer).eval(), tokenizer


@pytest.mark.parametrize("batch_size,max_rows", [(None, 64), (8, 64), (2, 3)])
def test_cached_batch_scores_equal_naive(tiny, batch_size, max_rows):
    model, tokenizer = tiny
    ctx = contexts(tokenizer, CHATS, prefix="<think>\n</think>\n")
    fast = score_options(model, tokenizer, ctx, OPTIONS, batch_size=batch_size, max_rows=max_rows)
    slow = naive_scores(model, tokenizer, ctx, OPTIONS)
    for f_row, s_row in zip(fast, slow):
        assert len(f_row) == len(s_row)
        for f, s in zip(f_row, s_row):
            assert f.n_tokens == s.n_tokens >= 2  # option text + </answer>
            assert f.logprob == pytest.approx(s.logprob, abs=1e-4)
            assert f.logprob < 0


def test_boundary_is_an_added_token(tiny):
    """Separate tokenisation (what we do) equals whole-string tokenisation split at the context."""
    _, tokenizer = tiny
    ctx = contexts(tokenizer, CHATS)
    assert all(c.endswith("<|im_start|>assistant\n<answer>") for c in ctx)
    assert boundary_mismatches(tokenizer, ctx, OPTIONS) == 0
    answer_id = tokenizer.convert_tokens_to_ids("<answer>")
    assert tokenizer(ctx[0], add_special_tokens=False)["input_ids"][-1] == answer_id


def test_problems_without_options_are_skipped_not_dropped(tiny):
    model, tokenizer = tiny
    problems = pd.DataFrame({
        "id": ["p1", "p2", "p3", "p4"], "family": ["cell_type", "perturb_de", "perturb_dir", "cell_type"],
        "answer_type": ["multiple_choice", "yes_no", "label", "gene_set"],
        "answer": ["B cell", "no", "up", "CD3D"],
        "choices": [["T cell", "B cell"], [], [], []], "split": ["test"] * 4})
    ctx = contexts(tokenizer, [CHATS[0], CHATS[1], CHATS[1], CHATS[0]])
    out = loglik_eval(model, tokenizer, problems, ctx, batch_size=2)
    assert list(out["problem_id"]) == ["p1", "p2", "p3", "p4"]
    assert list(out["scorable"]) == [True, True, True, False]
    assert out.loc[3, "reason"] == "open answer (gene_set)"
    assert list(out["gold"][:3]) == [1, 1, 0]
    assert out.loc[2, "options"] == ["up", "down"]
    first = out.loc[0]
    assert first["pred"] == max(range(2), key=lambda k: first["logprob"][k])
    assert first["logprob_norm"][1] == pytest.approx(first["logprob"][1] / len("B cell"))
    assert first["correct"] == (first["pred"] == 1)
    summary = loglik_summary(out).set_index("family")
    assert summary.loc["cell_type", "not_scorable"] == 1 and summary.loc["cell_type", "scorable"] == 1
    assert summary.loc["perturb_de", "chance"] == 0.5


def test_problem_options_per_answer_type():
    train = pd.DataFrame({"family": ["cell_type"] * 3 + ["instruction_alignment"],
                          "split": ["train", "train", "test", "train"],
                          "answer_type": ["label", "multiple_choice", "label", "label"],
                          "answer": ["T cell", "B cell", "NK cell", "42"]})
    labels = label_sets(train)
    assert labels == {"cell_type": ("B cell", "T cell")}
    mc = problem_options({"family": "tf_binding", "answer_type": "multiple_choice", "answer": "CTCF",
                          "choices": ["SP1", "CTCF"]})
    assert (mc.options, mc.gold, mc.scorable) == (("SP1", "CTCF"), 1, True)
    yn = problem_options({"family": "perturb_de", "answer_type": "yes_no", "answer": "yes", "choices": []})
    assert (yn.options, yn.gold) == (("yes", "no"), 0)
    cell = problem_options({"family": "cell_type", "answer_type": "label", "answer": "t cell",
                            "choices": None}, labels)
    assert (cell.options, cell.gold) == (("B cell", "T cell"), 1)  # matched after normalising
    unseen = problem_options({"family": "cell_type", "answer_type": "label", "answer": "NK cell",
                              "choices": []}, labels)
    assert unseen.scorable and unseen.gold is None  # scored, and always wrong
    number = problem_options({"family": "instruction_alignment", "answer_type": "label",
                              "answer": "42", "choices": []}, labels)
    assert not number.scorable and "open label" in number.reason
    js = problem_options({"family": "rare_disease", "answer_type": "json", "answer": "{}", "choices": []})
    assert not js.scorable
    row = next(pd.DataFrame([{"family": "perturb_dir", "answer_type": "label", "answer": "down",
                              "choices": []}]).itertuples())
    assert problem_options(row).gold == 1  # namedtuple rows work too


def test_summary_handles_empty_family():
    df = pd.DataFrame({"family": ["g"], "scorable": [False], "n_options": [0], "correct": [None],
                       "correct_norm": [None]})
    row = loglik_summary(df).iloc[0]
    assert row["scorable"] == 0 and math.isnan(row["acc"])
