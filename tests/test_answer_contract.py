"""One answer contract: annotate's reverse-verification filter, GRPO's correctness reward and
evaluate's scorer give the same verdict on every reply of one table (tasks/common/answers.py)."""
import pandas as pd
import pytest

from tasks.annotate import steps
from tasks.annotate.call_cache import CallCache
from tasks.annotate.teachers import CachedClient, Reply
from tasks.annotate.traces import Trace
from tasks.common.answers import LETTER_ABOVE, by_letter, judge, written_answer
from tasks.common.params import Annotate, Verifiers
from tasks.common.prompts import load_prompts
from tasks.evaluate import scoring
from tasks.verifiers.compose import reward_function
from tasks.verifiers.fitted import VerifierBundle
from tasks.verifiers.formatting import format_ok

MC = ["BRCA1", "TP53", "EGFR"]
CELLS = ["B cell", "CD14+ Monocyte", "NK cell"]
SIGNS = ["CD4+ T cell", "CD4- T cell"]
OMIM = '{"disease_name": "Marfan syndrome", "OMIM_ID": "OMIM:154700"}'


def tagged(text: str, tag: str = "answer") -> str:
    return f"<think>Reasoning.</think>\n<{tag}>{text}</{tag}>"


# (reply, gold answer, answer_type, choices, tag, expected)
TABLE = [
    # yes/no: a leading yes/no word followed by punctuation is that word; prose is not
    (tagged("yes, clearly"), "yes", "yes_no", [], "answer", True),
    (tagged("Yes."), "yes", "yes_no", [], "answer", True),
    (tagged("No, the motif is absent"), "yes", "yes_no", [], "answer", False),
    (tagged("no idea"), "no", "yes_no", [], "answer", False),
    (tagged("The answer is yes"), "yes", "yes_no", [], "answer", False),
    # direction: spellings of up/down, also where the gold is a label (PerturbQA direction)
    (tagged("upregulated"), "up", "label", [], "answer", True),
    (tagged("Increased"), "up", "yes_no", [], "answer", True),
    (tagged("Down-regulated, strongly"), "up", "label", [], "answer", False),
    # tag: case and inner whitespace tolerated; the last block counts; none or empty is no answer
    ("<think>r</think><Answer>x</Answer>", "x", "label", [], "answer", True),
    ("<think>r</think>< ANSWER >B cell</answer >", "B cell", "label", [], "answer", True),
    ("<answer>TP53</answer> on second thought <answer>EGFR</answer>", "EGFR", "multiple_choice", MC,
     "answer", True),
    (tagged(" "), "yes", "yes_no", [], "answer", False),
    ("<think>r</think>The answer is TP53.", "TP53", "multiple_choice", MC, "answer", False),
    ("<think>r</think><answer>TP53", "TP53", "multiple_choice", MC, "answer", False),
    ("", "TP53", "multiple_choice", MC, "answer", False),
    (tagged("yes", "solution"), "yes", "yes_no", [], "solution", True),
    (tagged("yes"), "yes", "yes_no", [], "solution", False),
    # json (Biomni-Eval1 rare disease): the OMIM id decides
    (tagged('{"disease_name": "MFS", "OMIM_ID": "154700"}'), OMIM, "json", [], "answer", True),
    (tagged('{"disease_name": "Marfan syndrome", "OMIM_ID": "154705"}'), OMIM, "json", [], "answer", False),
    (tagged('{"disease_name": "Marfan syndrome"}'), OMIM, "json", [], "answer", False),
    (tagged('```json\n{"disease_name": "Marfan", "OMIM_ID": "OMIM:154700"}\n```'), OMIM, "json", [],
     "answer", True),
    (tagged("Marfan syndrome (OMIM:154700)"), OMIM, "json", [], "answer", False),
    # labels: a sign left out still names the option; a sign changed or ambiguous does not
    (tagged("CD14 monocyte"), "CD14+ Monocyte", "label", [], "answer", True),
    (tagged("cd14+ monocyte."), "CD14+ Monocyte", "label", [], "answer", True),
    (tagged("CD14- Monocyte"), "CD14+ Monocyte", "label", [], "answer", False),
    (tagged("CD14 monocyte"), "CD14+ Monocyte", "multiple_choice", CELLS, "answer", True),
    (tagged("CD4 T cell"), "CD4+ T cell", "multiple_choice", SIGNS, "answer", False),
    (tagged("CD4+ T cell"), "CD4+ T cell", "multiple_choice", SIGNS, "answer", True),
    (tagged("A"), "T cell", "label", [], "answer", False),  # no options: a letter is just text
    # multiple choice: letters, text, and a letter contradicted by its text
    (tagged("B"), "TP53", "multiple_choice", MC, "answer", True),
    (tagged("(b)"), "TP53", "multiple_choice", MC, "answer", True),
    (tagged("B. TP53"), "TP53", "multiple_choice", MC, "answer", True),
    (tagged("tp53"), "TP53", "multiple_choice", MC, "answer", True),
    (tagged("A. TP53"), "TP53", "multiple_choice", MC, "answer", False),
    (tagged("A"), "TP53", "multiple_choice", MC, "answer", False),
    (tagged("E"), "TP53", "multiple_choice", MC, "answer", False),
    (tagged("KRAS"), "TP53", "multiple_choice", MC, "answer", False),
    # gene sets: order, case and separators do not matter; the sets must be equal
    (tagged("IL7R cd3d; CD3E"), "CD3D, CD3E, IL7R", "gene_set", [], "answer", True),
    (tagged("CD3D, CD3E"), "CD3D, CD3E, IL7R", "gene_set", [], "answer", False),
]
EXPECTED = [row[-1] for row in TABLE]


def _problems() -> pd.DataFrame:
    return pd.DataFrame([{"id": f"p{i}", "family": "family", "prompt": f"Question {i}?", "answer": answer,
                          "answer_type": answer_type, "choices": list(choices), "tag": tag}
                         for i, (_, answer, answer_type, choices, tag, _) in enumerate(TABLE)])


class ScriptedSolver:
    """A solver backend replying each problem's row of the table (found by its first step)."""

    endpoint, model = "scripted", "table"

    def run(self, calls, on_reply):
        for call in calls:
            on_reply(call, Reply(TABLE[int(call.context["steps"][0].split()[1])][0]))


def annotate_verdicts(tmp_path) -> list[bool]:
    """(a) annotate's reverse-verification filter, run as the stage runs it."""
    problems = _problems()
    taught = {f"p{i}": {"trace": Trace([f"row {i}", "more"], "so"), "reason": None, "tries": 1}
              for i in range(len(TABLE))}
    client = CachedClient(ScriptedSolver(), CallCache(tmp_path / "calls.sqlite"))
    verdicts = {}
    for tag, group in problems.groupby("tag"):
        verdicts |= steps.verify(group, taught, client, load_prompts(None), Annotate(), tag)
    assert {v["status"] for v in verdicts.values()} <= {"verified", "disagreed"}
    return [verdicts[f"p{i}"]["status"] == "verified" for i in range(len(TABLE))]


def reward_verdicts(answer_needs_format: bool = False) -> list[bool]:
    """(b) the GRPO correctness reward, called as TRL calls it; by default without the format gate
    (``verifiers.answer_needs_format``), which the test below checks on its own."""
    bundle = VerifierBundle(None, None, None, None, None)  # correctness needs no fitted model
    out = []
    for reply, answer, answer_type, choices, tag, _ in TABLE:
        settings = Verifiers(weights={"correctness": 1.0}, answer_tag=tag, answer_needs_format=answer_needs_format)
        [score] = reward_function("correctness", bundle, settings)(
            ["Question?"], [reply], answer=[answer], answer_type=[answer_type], choices=[choices],
            family=["family"], id=["p"])
        assert score in (0.0, 1.0)
        out.append(score == 1.0)
    return out


def evaluate_verdicts() -> list[bool]:
    """(c) evaluate's per-problem scorer, on the table as a test split."""
    problems = _problems()
    correct = {}
    for tag, group in problems.groupby("tag"):
        replies = [TABLE[int(pid[1:])][0] for pid in group["id"]]
        scored = scoring.score_completions(group, replies, [1] * len(group), tag)
        correct |= dict(zip(scored["problem_id"], scored["correct"]))
    return [bool(correct[f"p{i}"]) for i in range(len(TABLE))]


def test_the_filter_the_reward_and_the_metric_agree_with_the_contract(tmp_path):
    by_caller = {"annotate": annotate_verdicts(tmp_path), "grpo": reward_verdicts(),
                 "evaluate": evaluate_verdicts(),
                 "judge": [judge(r, a, t, c, tag) for r, a, t, c, tag, _ in TABLE]}
    for caller, verdicts in by_caller.items():
        wrong = [(TABLE[i][0], TABLE[i][1], TABLE[i][2], EXPECTED[i]) for i, v in enumerate(verdicts)
                 if v != EXPECTED[i]]
        assert not wrong, f"{caller} disagrees with the table on: {wrong}"


def test_with_the_format_gate_the_reward_is_the_contract_and_the_format_rule_together():
    """The gate adds no rule of its own: right by ``judge`` and well formed by ``format_ok``."""
    gated = reward_verdicts(answer_needs_format=True)
    both = [judge(r, a, t, c, tag) and format_ok(r, tag) for r, a, t, c, tag, _ in TABLE]
    assert gated == both
    assert any(e and not g for e, g in zip(EXPECTED, gated))  # a right answer in a malformed reply


@pytest.mark.parametrize("chat", [False, True])
def test_the_reward_reads_chat_completions_like_text(chat):
    reply = tagged("yes, clearly")
    completion = [{"role": "assistant", "content": reply}] if chat else reply
    f = reward_function("correctness", VerifierBundle(None, None, None, None, None),
                        Verifiers(weights={"correctness": 1.0}))
    assert f(["Q?"], [completion], answer=["yes"], answer_type=["yes_no"], choices=[[]]) == [1.0]


def test_long_options_are_written_by_letter_and_each_form_reads_back_as_its_option():
    assert not by_letter("multiple_choice", ["x" * LETTER_ABOVE, "y"])
    assert by_letter("multiple_choice", ["x" * (LETTER_ABOVE + 1), "y"])
    assert not by_letter("label", ["x" * 99])
    proteins = [f"<protein>M{aa * 40}</protein>" for aa in "KVL"]
    for i, gold in enumerate(proteins):
        said = written_answer(gold, "multiple_choice", proteins)
        assert said == "ABC"[i]
        for j, other in enumerate(proteins):  # the letter, the text and the two together all select it
            for reply in (said, gold, f"{said}. {gold}"):
                assert judge(tagged(reply), other, "multiple_choice", proteins) == (i == j)
    assert written_answer("not an option", "multiple_choice", proteins) == "not an option"
