"""Nothing is cut, on the committed run of the default profile (``reports/``, from ``dvc repro``):
every SFT chat and every GRPO trace group or completion was trained whole, and evaluate's completion
budget holds the longest reply SFT trained on. The smoke profile's counterpart is asserted on the
smoke run in tests/test_pipeline_e2e.py."""
import json

import yaml

from tests.conftest import PROJECT

REPORTS = PROJECT / "reports"


def _metrics(stage: str) -> dict:
    return json.loads((REPORTS / stage / "metrics.json").read_text())  # committed with dvc.lock


def test_every_sft_chat_was_trained_whole():
    phases = _metrics("sft")["phases"]
    assert set(phases) == {"instruction", "answer", "cold_start"}
    for name, phase in phases.items():
        assert phase["dropped_overlength"] == 0, f"{name}: {phase['dropped_per_family']}"
        assert phase["chats_dropped"] == 0, name  # TRL left no chat without trained tokens
        assert phase["tokens_max"] <= phase["max_length"], name


def test_evaluate_has_room_for_the_longest_reply_sft_trained_on():
    longest = max(p["reply_tokens_max"] for p in _metrics("sft")["phases"].values())
    evaluate = _metrics("evaluate")
    assert evaluate["max_new_tokens"] >= longest
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())["evaluate"]
    assert params["max_new_tokens"] >= longest  # the committed params, not only the committed run


def test_every_grpo_example_was_trained_whole():
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())["grpo"]
    grpo = _metrics("grpo")
    assert grpo["mode"] == params["mode"]  # the committed run is of the committed params
    if grpo["mode"] in ("offline", "offline_then_online"):
        offline = grpo["offline"]
        assert offline["groups_over_max_length"] == 0, offline["groups_over_max_length_per_family"]
    if grpo["mode"] in ("online", "offline_then_online"):
        # a completion cut at max_completion_length is counted and masked out of the loss, not trained on
        assert params["online"]["mask_truncated_completions"] is True
        assert 0 <= grpo["online"]["completions_clipped_ratio_mean"] < 0.05
