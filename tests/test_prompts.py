import pytest

from tasks.common import prompts as pr
from tasks.common.schemas import CATEGORIES


def test_every_category_has_a_teacher_focus():
    p = pr.load_prompts(None)
    assert all(f"teacher_{c}" in p for c in CATEGORIES)  # the one list of problem categories


def test_problem_messages_are_the_sft_chats_opening_turns():
    p = pr.load_prompts(None)
    rec = {"prompt": "Which cell type is this?", "answer_type": "label"}
    sft = pr.sft_messages(rec, ["step one"], "so", "T cell", p, "solution")
    assert pr.problem_messages(rec, p, "solution") == sft[:2]
    assert "<think></think>" in sft[0]["content"] and "<solution></solution>" in sft[0]["content"]
    assert sft[2]["content"] == "<think>\n1. step one\nso\n</think>\n<solution> T cell</solution>"


def test_teacher_messages_carry_answer_evidence_and_passages():
    p = pr.load_prompts(None)
    msgs = pr.teacher_messages(p, "cell", "Which cell?", "B cell", '{"m": 1}', ["B cells express CD79A."])
    assert [m["role"] for m in msgs] == ["system", "user"]
    user = msgs[1]["content"]
    assert "B cell" in user and '{"m": 1}' in user and "[1] B cells express CD79A." in user
    assert "marker" in user  # the cell category's focus
    assert "never say or imply" in msgs[0]["content"]


def test_solver_sees_question_and_steps_only():
    p = pr.load_prompts(None)
    [msg] = pr.solver_messages(p, "Does it bind?", ["first", "second"], "yes_no", "solution")
    assert "1. first\n2. second" in msg["content"] and "<solution></solution>" in msg["content"]


def test_override_folder_replaces_a_prompt(tmp_path):
    (tmp_path / "solver.txt").write_text("Q: {question}\nS: {steps}\n{answer_format}")
    p = pr.load_prompts(tmp_path)
    assert p["solver"].startswith("Q: ") and p["teacher_user"] == pr.TEACHER_USER


def test_override_missing_a_field_or_unknown_name_fails(tmp_path):
    (tmp_path / "solver.txt").write_text("Q: {question}")
    with pytest.raises(ValueError, match="missing field"):
        pr.load_prompts(tmp_path)
    (tmp_path / "solver.txt").unlink()
    (tmp_path / "solvr.txt").write_text("x")
    with pytest.raises(ValueError, match="unknown name"):
        pr.load_prompts(tmp_path)


LONG = ["<protein>MSTNPKPQRKTKRNTNRRPQDVKF</protein>", "<protein>MAKGELRSWMHQQQQQQQQQQQQQQ</protein>"]


def test_a_problem_whose_options_are_too_long_to_copy_is_asked_and_answered_by_letter():
    p = pr.load_prompts(None)
    rec = {"prompt": "Which protein?\nA. ...\nB. ...", "answer_type": "multiple_choice", "choices": LONG}
    sft = pr.sft_messages(rec, ["step one"], "", LONG[1], p, "answer")
    assert sft[1]["content"].endswith("Finish with the letter of the correct option inside <answer></answer>.")
    assert sft[2]["content"].endswith("<answer> B</answer>")
    assert pr.direct_messages(rec, LONG[0], p, "answer")[-1]["content"] == "<answer> A</answer>"
    short = rec | {"choices": ["TP53", "BRCA1"]}  # short options keep their text
    assert pr.sft_messages(short, ["s"], "", "TP53", p, "answer")[2]["content"].endswith("<answer> TP53</answer>")
    assert "the text of the correct option" in pr.problem_messages(short, p, "answer")[1]["content"]
