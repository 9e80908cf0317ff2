"""Rollout prompts, the stage's leakage guard on fitted verifiers, and the reward curve tables."""
import json

import pytest

from tasks.common.prompts import problem_messages
from tasks.train.grpo_data import (assert_no_test_entities, cap_per_family, offline_curve, reward_curve,
                             reward_summary, rollout_prompts)
from tasks.common.prompts import load_prompts
from tasks.verifiers.fitted import fit_verifiers, held_out_entities
from tests.grpo_fixtures import problems
from tests.verifier_fixtures import SETTINGS, write_corpus


@pytest.fixture(scope="module")
def tokenizer(tiny_base):
    from tasks.lm.modeling import load_tokenizer

    return load_tokenizer(tiny_base[0])


def test_rollout_prompts_are_annotates_chat_prompts_of_one_split(tokenizer):
    table, prompts = problems(), load_prompts(None)
    rows, too_long = rollout_prompts(table, prompts, "answer", tokenizer, ["perturb_dir"], 10_000)
    assert too_long == {} and set(rows["id"]) == set(table.loc[(table["split"] == "train") &
                                                             (table["family"] != "perturb_dir"), "id"])
    first = table.set_index("id").loc[rows["id"][0]].to_dict() | {"id": rows["id"][0]}
    assert list(rows["prompt"][0]) == problem_messages(first, prompts, "answer")
    assert {"answer", "answer_type", "choices", "evidence", "source_ids", "family"} <= set(rows.columns)
    test, _ = rollout_prompts(table, prompts, "answer", tokenizer, [], 10_000, split="test")
    assert set(test["id"]) == set(table.loc[table["split"] == "test", "id"])


def test_direct_rollouts_use_the_answer_only_prompt_and_say_so(tokenizer):
    table, prompts = problems(), load_prompts(None)
    reasoned, _ = rollout_prompts(table, prompts, "answer", tokenizer, [], 10_000)
    direct, _ = rollout_prompts(table, prompts, "answer", tokenizer, [], 10_000, style="direct")
    first = table.set_index("id").loc[direct["id"][0]].to_dict() | {"id": direct["id"][0]}
    assert list(direct["prompt"][0]) == problem_messages(first, prompts, "answer", think=False)
    assert list(direct["prompt"][0]) != list(reasoned["prompt"][0])
    assert direct["reasoning"].eq(False).all() and reasoned["reasoning"].eq(True).all()
    with pytest.raises(ValueError, match="unknown prompt style"):
        rollout_prompts(table, prompts, "answer", tokenizer, [], 10_000, style="terse")


def test_long_prompts_are_counted_and_left_out(tokenizer):
    rows, too_long = rollout_prompts(problems(), load_prompts(None), "answer", tokenizer, [], 60)
    assert too_long and sum(too_long.values()) + len(rows) == (problems()["split"] == "train").sum()


def test_cap_per_family():
    table = problems()
    capped = cap_per_family(table, 1)
    assert capped["family"].value_counts().max() == 1 and set(capped["family"]) == set(table["family"])
    assert len(cap_per_family(table, None)) == len(table)


def test_stage_guard_passes_a_train_fit_and_refuses_a_leak(tmp_path):
    table = problems()
    manifest = fit_verifiers(table, write_corpus(tmp_path / "corpus"), tmp_path / "fitted", SETTINGS)
    assert assert_no_test_entities(manifest, table, "fitted") > 0
    leaked = json.loads(json.dumps(manifest))
    test_cell = sorted(e for e in held_out_entities(table) if e.startswith("cell:"))[0]
    leaked["cell_type"]["train_entities"].append(test_cell)
    with pytest.raises(AssertionError, match=test_cell):
        assert_no_test_entities(leaked, table, "fitted")
    with pytest.raises(AssertionError, match="not 'train'"):
        assert_no_test_entities({**manifest, "fitted_on": "all"}, table, "fitted")


HISTORY = [
    {"step": 1, "reward": 0.2, "reward_std": 0.1, "kl": 0.0, "frac_reward_zero_std": 0.5,
     "completions/mean_length": 10.0, "completions/clipped_ratio": 1.0, "clip_ratio/region_mean": 0.0,
     "rewards/correctness/mean": 0.0, "rewards/correctness/std": 0.0, "rewards/format/mean": 1.0,
     "rewards/format/std": 0.0, "loss": 0.1},
    {"step": 2, "reward": 0.6, "reward_std": 0.3, "kl": 0.01, "frac_reward_zero_std": 0.0,
     "completions/mean_length": 12.0, "completions/clipped_ratio": 0.5, "clip_ratio/region_mean": 0.0,
     "rewards/correctness/mean": 0.5, "rewards/correctness/std": 0.5, "rewards/format/mean": 1.0,
     "rewards/format/std": 0.0, "rewards/cell_type/mean": None, "loss": 0.2},
    {"step": 2, "train_loss": 0.15, "train_runtime": 3.0},
]


def test_reward_curve_and_summary():
    curve = reward_curve(HISTORY)
    assert curve["step"].tolist() == [1, 2]
    assert {"reward", "kl", "frac_reward_zero_std", "completions/mean_length", "completions/clipped_ratio",
            "rewards/correctness/mean", "rewards/format/mean"} <= set(curve.columns)
    summary = reward_summary(HISTORY)
    assert summary["reward_first"] == 0.2 and summary["reward_last"] == 0.6
    assert summary["verifiers"]["correctness"] == {"mean": 0.25, "std": 0.25}
    assert "cell_type" not in summary["verifiers"]                       # never applied
    assert reward_curve([{"step": 1, "loss": 1.0}]).empty


def test_offline_curve_keeps_the_loss_parts():
    curve = offline_curve([{"step": 2, "loss": 1.0, "weighted_nll": 0.9, "kl": 0.1}, {"step": 2, "train_loss": 1}])
    assert curve["step"].tolist() == [2] and curve["kl"].tolist() == [0.1]
