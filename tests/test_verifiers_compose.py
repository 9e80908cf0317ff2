"""The TRL-facing reward functions: signature, routing by family, weights, group normalisation."""
import pytest

from tasks.verifiers.compose import (SOFT_FAMILIES, combine, composed_reward, reward_function,
                                     trl_reward_setup)
from tasks.verifiers.fitted import fit_verifiers, load_verifiers
from tests.verifier_fixtures import SETTINGS, problems, write_corpus


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    root = tmp_path_factory.mktemp("verifiers")
    fit_verifiers(problems(), write_corpus(root / "corpus"), root / "out", SETTINGS)
    return load_verifiers(root / "out", SETTINGS)


def _batch(rows, completions):
    """What GRPOTrainer passes: prompts, completions, and every other column as a list."""
    columns = {k: [r[k] for r in rows] for k in ("id", "family", "answer", "answer_type", "choices",
                                                 "evidence", "source_ids")}
    return [r["prompt"] for r in rows], completions, columns


def _answer(text):
    return f"<think>Looking at the top genes.</think><answer>{text}</answer>"


def test_per_verifier_functions_route_by_family(bundle):
    table = problems()
    cell = table[(table["family"] == "cell_type") & (table["answer_type"] == "multiple_choice")].iloc[0]
    de = table[table["family"] == "perturb_de"].iloc[0]
    prompts, completions, columns = _batch([cell, cell, de],
                                           [_answer(cell["answer"]), "no tags at all", _answer("yes")])
    f = reward_function("cell_type", bundle, SETTINGS)
    assert f.__name__ == "cell_type"
    scores = f(prompts, completions, completion_ids=[[1] * 5] * 3, trainer_state=None, **columns)
    assert scores[0] > 0.5 and scores[1] == 0.0 and scores[2] is None
    pert = reward_function("perturbation", bundle, SETTINGS)(prompts, completions, **columns)
    assert pert[:2] == [None, None] and 0 < pert[2] <= 1
    correct = reward_function("correctness", bundle, SETTINGS)(prompts, completions, **columns)
    assert correct == [1.0, 0.0, 1.0]
    fmt = reward_function("format", bundle, SETTINGS)(prompts, completions, **columns)
    assert fmt == [1.0, 0.0, 1.0]


def test_an_answer_without_its_reasoning_block_earns_no_answer_reward_unless_asked_not_to(bundle):
    table = problems()
    cell = table[(table["family"] == "cell_type") & (table["answer_type"] == "multiple_choice")].iloc[0]
    bare, after = f"<answer>{cell['answer']}</answer>", _answer(cell["answer"]) + " and more"
    prompts, completions, columns = _batch([cell] * 3, [_answer(cell["answer"]), bare, after])
    ungated = SETTINGS.model_copy(update={"answer_needs_format": False})
    for name in ("correctness", "cell_type"):
        gated_scores = reward_function(name, bundle, SETTINGS)(prompts, completions, **columns)
        free_scores = reward_function(name, bundle, ungated)(prompts, completions, **columns)
        assert gated_scores[0] == free_scores[0] > 0.5 and gated_scores[1:] == [0.0, 0.0]
        assert free_scores[1] == free_scores[0] and free_scores[2] == free_scores[0]
    # the answer-only rollout prompt asks for the answer block alone: there, it is the well-formed reply
    direct = reward_function("correctness", bundle, SETTINGS)(prompts, completions, reasoning=[False] * 3,
                                                              **columns)
    assert direct == [0.0, 1.0, 0.0]


def test_chat_completions_and_token_lengths(bundle):
    row = problems().iloc[0]
    prompts, _, columns = _batch([row], None)
    chat_prompt = [[{"role": "user", "content": row["prompt"]}]]
    chat = [[{"role": "assistant", "content": _answer(row["answer"])}]]
    assert reward_function("correctness", bundle, SETTINGS)(chat_prompt, chat, **columns) == [1.0]
    assert reward_function("cell_type", bundle, SETTINGS)(chat_prompt, chat, **columns)[0] > 0.3
    length = reward_function("length", bundle, SETTINGS)
    assert length(prompts, chat, completion_ids=[[0] * 75], **columns) == [-0.5]  # budget 50
    assert length(prompts, chat, **columns) == [0.0]  # words when no token ids


def test_soft_verifiers_only_where_their_family_is():
    assert SOFT_FAMILIES["phenotype"] == {"rare_disease", "causal_gene"}
    assert all(isinstance(v, set) for v in SOFT_FAMILIES.values())


def test_trl_setup_follows_params(bundle):
    setup = trl_reward_setup(bundle, SETTINGS)
    names = [f.__name__ for f in setup["reward_funcs"]]
    assert names == list(SETTINGS.weights)
    assert setup["reward_weights"] == list(SETTINGS.weights.values())
    assert setup["multi_objective_aggregation"] == "sum_then_normalize"
    normalised = SETTINGS.model_copy(update={"normalise_per_group": True, "weights": {"format": 1.0}})
    setup = trl_reward_setup(bundle, normalised)
    assert [f.__name__ for f in setup["reward_funcs"]] == ["format"]
    assert setup["multi_objective_aggregation"] == "normalize_then_sum"
    from trl.trainer.grpo_trainer import get_callable_name
    assert get_callable_name(setup["reward_funcs"][0]) == "format"


def test_missing_fitted_model_is_an_error_not_a_silent_zero(bundle):
    from dataclasses import replace
    with pytest.raises(ValueError, match="no fitted model"):
        reward_function("cell_type", replace(bundle, cell_type=None), SETTINGS)
    with pytest.raises(ValueError, match="unknown verifier"):
        reward_function("magic", bundle, SETTINGS)


def test_composed_reward_weights_and_group_normalisation(bundle):
    row = problems().iloc[1]  # a multiple-choice cell
    wrong = next(c for c in row["choices"] if c != row["answer"])
    prompts, completions, columns = _batch([row, row], [_answer(row["answer"]), _answer(wrong)])
    settings = SETTINGS.model_copy(update={"weights": {"correctness": 1.0, "format": 0.5, "cell_type": 0.0}})
    plain = composed_reward(bundle, settings)
    assert plain.__name__ == "composed"
    assert plain(prompts, completions, **columns) == [1.5, 0.5]
    grouped = composed_reward(bundle, settings.model_copy(update={"normalise_per_group": True}))
    right, bad = grouped(prompts, completions, **columns)
    assert right == pytest.approx(0.7071, abs=1e-3) and bad == pytest.approx(-0.7071, abs=1e-3)


def test_combine_skips_none_and_standardises_per_group():
    assert combine({"a": [None, None]}, {"a": 1.0}, groups=["g", "g"]) == [0.0, 0.0]
    assert combine({"a": [2.0, 2.0]}, {"a": 1.0}, groups=["g", "g"]) == [0.0, 0.0]
    assert combine({}, {}) == []
