"""The held-out check scores completions with the answers module and the composed verifiers."""
import pandas as pd
import pytest

from tasks.train.heldout import per_family, score_completions
from tasks.common.prompts import load_prompts
from tests.grpo_fixtures import problems
from tests.verifier_fixtures import SETTINGS, write_corpus


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from tasks.verifiers.fitted import fit_verifiers, load_verifiers

    root = tmp_path_factory.mktemp("heldout")
    fit_verifiers(problems(), write_corpus(root / "corpus"), root / "fitted", SETTINGS)
    return load_verifiers(root / "fitted", SETTINGS)


def test_right_wrong_and_unformatted_answers(bundle):
    table = problems()
    rows = table[(table["split"] == "test") & (table["family"] == "perturb_de")].reset_index(drop=True)
    rows["prompt"] = [[{"role": "user", "content": p}] for p in rows["prompt"]]
    right = f"<think>the knockdown acts</think><answer>{rows['answer'][0]}</answer>"
    wrong = "<think>no effect</think><answer>" + ("no" if rows["answer"][0] == "yes" else "yes") + "</answer>"
    scored = score_completions(pd.concat([rows] * 3, ignore_index=True), [right, wrong, "yes"], bundle, SETTINGS)
    assert scored["correct"].tolist() == [1.0, 0.0, 0.0]
    assert scored["format_ok"].tolist() == [1.0, 1.0, 0.0]
    assert scored["reward"][0] > scored["reward"][1] > scored["reward"][2] - 1e-9
    table = per_family(scored.assign(model="m"))
    assert table.loc[0, "accuracy"] == pytest.approx(1 / 3, abs=1e-4) and table.loc[0, "problems"] == 3


def test_format_is_scored_even_when_it_earns_no_reward(bundle):
    table = problems()
    rows = table[(table["split"] == "test") & (table["family"] == "perturb_de")].reset_index(drop=True).head(1)
    rows["prompt"] = [[{"role": "user", "content": p}] for p in rows["prompt"]]
    right = f"<think>the knockdown acts</think><answer>{rows['answer'][0]}</answer>"
    unweighted = SETTINGS.model_copy(update={"weights": {**SETTINGS.weights, "format": 0.0}})
    with_format = score_completions(pd.concat([rows] * 2, ignore_index=True), [right, "yes"], bundle, SETTINGS)
    without = score_completions(pd.concat([rows] * 2, ignore_index=True), [right, "yes"], bundle, unweighted)
    assert with_format["format_ok"].tolist() == without["format_ok"].tolist() == [1.0, 0.0]
    assert without["reward"][0] < with_format["reward"][0]   # the format weight is gone from the sum
