import pytest

from tasks.verifiers.formatting import format_ok
from tasks.verifiers.shaping import length_penalty, repetition_penalty


@pytest.mark.parametrize("completion, ok", [
    ("<think>CD14 and LYZ are high.</think>\n<answer>CD14+ Monocyte</answer>", True),
    ("  <THINK>r</THINK> <Answer>x</Answer>\n\n", True),
    ("<think>r</think><answer>x</answer>trailing", False),
    ("<answer>x</answer><think>r</think>", False),
    ("<think>r</think>between<answer>x</answer>", False),
    ("<think>r</think><answer>x</answer><answer>y</answer>", False),
    ("<think>a</think><think>b</think><answer>x</answer>", False),
    ("<think></think><answer>x</answer>", False),
    ("<think>r</think><answer> </answer>", False),
    ("preamble <think>r</think><answer>x</answer>", False),
    ("<think>r</think><answer>x", False),
])
def test_format(completion, ok):
    assert format_ok(completion) is ok


@pytest.mark.parametrize("completion, ok", [
    ("<answer>CD14+ Monocyte</answer>", True),
    ("  <Answer>x</Answer>\n", True),
    ("<think>r</think><answer>x</answer>", False),   # reasoning where none was asked for
    ("<answer>x</answer> more", False),
    ("<answer> </answer>", False),
    ("<answer>x</answer><answer>y</answer>", False),
    ("x", False),
])
def test_format_on_the_answer_only_prompt(completion, ok):
    assert format_ok(completion, reasoning=False) is ok


def test_the_format_verifier_reads_the_prompt_style_of_each_rollout():
    from tasks.verifiers.compose import reward_function
    from tests.verifier_fixtures import SETTINGS

    fmt = reward_function("format", None, SETTINGS)
    completions = ["<answer>x</answer>", "<answer>x</answer>", "<think>r</think><answer>x</answer>"]
    assert fmt(["q"] * 3, completions, reasoning=[False, True, True]) == [1.0, 0.0, 1.0]
    assert fmt(["q"], ["<think>r</think><answer>x</answer>"]) == [1.0]  # no column: reasoned


def test_the_answer_tag_is_configurable_and_the_reasoning_block_is_always_think():
    assert format_ok("<think>r</think><solution>x</solution>", answer_tag="solution")
    assert not format_ok("<think>r</think><solution>x</solution>")
    assert not format_ok("<reasoning>r</reasoning><solution>x</solution>", answer_tag="solution")


def test_length_penalty_grows_past_the_budget():
    assert length_penalty(100, 100) == 0.0
    assert length_penalty(125, 100) == -0.25
    assert length_penalty(10_000, 100) == -1.0
    with pytest.raises(ValueError):
        length_penalty(1, 0)


def test_repetition_penalty_counts_repeated_ngrams():
    assert repetition_penalty("the cell is a monocyte because CD14 is high", n=3) == 0.0
    looping = "CD14 is high. " * 20
    assert repetition_penalty(looping, n=3) < -0.9
    assert repetition_penalty("short", n=4) == 0.0
