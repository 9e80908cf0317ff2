"""The family check of online GRPO (tasks/train/room.py), and the committed run that used it."""
import json

import pandas as pd
import yaml

from tasks.train.room import families_with_room
from tests.conftest import PROJECT


def _judged(correct_per_family: dict[str, list[list[float]]]) -> pd.DataFrame:
    rows = [{"id": f"{family}-{i}", "family": family, "correct": c}
            for family, problems in correct_per_family.items()
            for i, samples in enumerate(problems) for c in samples]
    return pd.DataFrame(rows)


def test_a_family_is_kept_only_strictly_inside_the_accuracy_band():
    judged = _judged({"always_wrong": [[0, 0], [0, 0]], "always_right": [[1, 1], [1, 1]],
                      "mixed": [[1, 0], [0, 0]], "mostly_right": [[1, 1], [1, 0]]})
    table = families_with_room(judged, 0.0, 1.0).set_index("family")
    assert table["kept"].to_dict() == {"always_right": False, "always_wrong": False, "mixed": True,
                                       "mostly_right": True}
    assert table.loc["mixed", "accuracy"] == 0.25 and table.loc["mixed", "groups_with_variance"] == 0.5
    assert table.loc["mixed", "samples"] == 4 and table.loc["mixed", "problems"] == 2
    narrow = families_with_room(judged, 0.25, 0.75).set_index("family")["kept"]
    assert not narrow["mixed"] and not narrow["mostly_right"]  # the bounds are exclusive


def test_the_committed_grpo_run_trained_the_families_with_room_and_evaluate_compared_on_them():
    """The committed run (reports/, from dvc repro) of the committed params."""
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())["grpo"]
    grpo = json.loads((PROJECT / "reports/grpo/metrics.json").read_text())
    room = pd.read_csv(PROJECT / "reports/grpo/room.csv")
    if not params["room"]["problems_per_family"] or grpo["mode"] == "offline":
        assert room.empty
        return
    kept = sorted(room.loc[room["kept"], "family"])
    assert kept and (room["problems"] == params["room"]["problems_per_family"]).all()
    assert room.loc[room["kept"], "accuracy"].between(params["room"]["min_accuracy"],
                                                      params["room"]["max_accuracy"],
                                                      inclusive="neither").all()
    assert sorted(grpo["online_prompts_per_family"]) == kept
    if grpo["mode"] == "online":
        assert grpo["trained_families"] == kept
    evaluate = json.loads((PROJECT / "reports/evaluate/metrics.json").read_text())
    compared = evaluate["trained_families"]["grpo - sft"]
    assert compared["loglik"]["families"] == grpo["trained_families"]
    assert compared["generation"]["families"] == grpo["trained_families"]
