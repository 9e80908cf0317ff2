import numpy as np
import pandas as pd

from tasks.problems.choices import PositionDealer, arrange, draw_distractors, surface_cue_accuracy
from tasks.problems.records import lettered


def test_positions_are_uniform():
    deal = PositionDealer(4, np.random.default_rng(1))
    counts = np.bincount([deal() for _ in range(400)], minlength=4)
    assert counts.tolist() == [100, 100, 100, 100]


def test_distractors_exclude_answer_and_respect_filter():
    rng = np.random.default_rng(0)
    for _ in range(50):
        d = draw_distractors("a", ["a", "b", "c", "d", "e"], 3, rng, allowed=lambda o: o != "e")
        assert sorted(d) == ["b", "c", "d"]
    assert draw_distractors("a", ["a", "b"], 3, rng) is None


def _mc(n, rng, cue):
    names = [f"option{'x' * k}" for k in range(12)]
    rows = []
    deal = PositionDealer(4, rng)
    for i in range(n):
        picked = list(rng.choice(len(names), size=4, replace=False))
        if cue:  # the right answer is always the longest option: a surface cue
            answer = names[max(picked)]
            others = [names[j] for j in picked if j != max(picked)]
        else:
            answer, others = names[picked[0]], [names[j] for j in picked[1:]]
        opts = arrange(answer, others, deal())
        rows.append({"prompt": f"Question {i}?\n{lettered(opts)}", "answer": answer, "choices": opts})
    return pd.DataFrame(rows)


def test_surface_cue_classifier_is_at_chance_without_cues_and_finds_a_planted_one():
    rng = np.random.default_rng(0)
    fair = surface_cue_accuracy(_mc(400, rng, False), _mc(400, rng, False))
    assert abs(fair["accuracy"] - fair["chance"]) < 0.08
    cued = surface_cue_accuracy(_mc(400, rng, True), _mc(400, rng, True))
    assert cued["accuracy"] > 0.9
