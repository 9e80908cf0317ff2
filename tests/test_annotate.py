import json
import random

import pytest

from tasks.annotate import traces as an
from tasks.common.params import Variants

CFG = Variants().model_dump()


@pytest.mark.parametrize("text,reason", [
    ("not json at all", "bad_json"),
    ('{"steps": "one string", "conclusion": "c"}', "missing_steps"),
    ('{"steps": ["only one"], "conclusion": "c"}', "too_few_steps"),
    ('{"steps": ["a", "b"]}', "missing_conclusion"),
    ('{"steps": ["The answer is yes.", "b"], "conclusion": "c"}', "answer_leaked_in_step1"),
    (None, "no_reply"),
])
def test_parse_rejections_name_their_reason(text, reason):
    assert an.parse_trace(text, "yes", "yes_no", []) == (None, reason)


def test_naming_every_option_in_step_one_is_not_a_leak():
    text = json.dumps({"steps": ["Options are B cell, T cell and Monocyte.", "b"], "conclusion": "c"})
    trace, reason = an.parse_trace(text, "B cell", "multiple_choice", ["B cell", "T cell", "Monocyte"])
    assert reason is None and trace.steps[0].startswith("Options")


def test_variants_follow_the_configured_fractions_and_rewards():
    steps = [f"step {i}." for i in range(10)]
    trace = an.Trace(steps, "Therefore B.")
    pool = [f"extra {i}." for i in range(20)]
    out = {v["variant"]: v for v in an.variants("p1", trace, "B", "multiple_choice", ["A", "B", "C"],
                                                pool, [], CFG, seed=0)}
    assert set(out) == {"gold", "short", "long", "redundant", "no_reason", "negative"}
    assert {k: v["reward"] for k, v in out.items()} == {"gold": 1.0, "short": 0.5, "long": 0.5,
                                                       "redundant": 0.7, "no_reason": 0.2, "negative": -1.0}
    assert len(out["short"]["steps"]) == 6 and out["short"]["steps"][-1] == steps[-1]
    assert len(out["no_reason"]["steps"]) == 2
    assert len(out["long"]["steps"]) == 13 and out["long"]["steps"][-1] == steps[-1]
    assert sum(s.startswith("extra") for s in out["long"]["steps"]) == 3
    assert len(out["redundant"]["steps"]) == 13
    assert sum(s.startswith("As noted") for s in out["redundant"]["steps"]) == 3
    assert out["negative"]["answer"] in {"A", "C"} and out["negative"]["steps"] == steps
    # seeded per problem: reproducible
    again = an.variants("p1", trace, "B", "multiple_choice", ["A", "B", "C"], pool, [], CFG, seed=0)
    assert [v["steps"] for v in again] == [v["steps"] for v in out.values()]


def test_no_extraneous_pool_means_no_long_variant():
    out = an.variants("p", an.Trace(["a.", "b."], "c"), "yes", "yes_no", [], [], [], CFG, seed=0)
    assert "long" not in {v["variant"] for v in out}
    assert [v for v in out if v["variant"] == "negative"][0]["answer"] == "no"


def test_wrong_answer_comes_from_the_pool_without_choices():
    assert an.wrong_answer("B cell", "label", [], ["B cell", "T cell"], random.Random(0)) == "T cell"
    assert an.wrong_answer("B cell", "label", [], ["B cell"], random.Random(0)) is None
    # the answer contract decides what is the same answer: a sign-less spelling is not "wrong"
    assert an.wrong_answer("CD14+ Monocyte", "label", [], ["CD14 monocyte"], random.Random(0)) is None
    assert an.wrong_answer("Yes", "yes_no", [], [], random.Random(0)) == "no"


def test_short_answers_leak_only_when_stated():
    assert not an.leaks_answer("Genes knocked down in training tell us much.", "down", "label", [])
    assert an.leaks_answer("So the answer is down.", "down", "label", [])
