import numpy as np
import pandas as pd

from tasks.problems.choices import (PositionDealer, arrange, draw_by_rank, draw_distractors, same_split,
                                   surface_cue_accuracy)
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


def _entity_mc(rng, own_split_distractors):
    """One problem per named entity (a motif, a disease), 20 test and 80 train; each name is an
    option exactly four times (once right), as the builders' usage balancing makes it."""
    names = [f"entity{i}" for i in range(100)]
    split = {n: ("test" if i < 20 else "train") for i, n in enumerate(names)}
    deal, rows = PositionDealer(4, rng), []
    for i, answer in enumerate(names):
        pool = same_split(names, split.get, split[answer]) if own_split_distractors else names
        k = pool.index(answer)
        step = 1 if own_split_distractors else 20   # 20: a test problem's distractors are train names
        opts = arrange(answer, [pool[(k + j * step) % len(pool)] for j in (1, 2, 3)], deal())
        rows.append({"prompt": f"Which?\n{lettered(opts)}", "answer": answer, "choices": opts,
                     "split": split[answer]})
    df = pd.DataFrame(rows)
    return df[df["split"] == "train"], df[df["split"] == "test"]


def test_audit_finds_distractors_from_the_other_split_and_same_split_removes_the_cue():
    # distractors from every entity: the test answers are the options never right in train, so a
    # choice-only classifier (like a model that learnt the train answers) picks against them
    leaky = surface_cue_accuracy(*_entity_mc(np.random.default_rng(0), False))
    assert leaky["accuracy"] < 0.1, leaky
    fair = [surface_cue_accuracy(*_entity_mc(np.random.default_rng(s), True))["accuracy"] for s in range(5)]
    assert abs(np.mean(fair) - 0.25) < 0.12, fair


def _band_mc(n, rng, by_rank):
    """Options are strings of random lengths; distractors come from a band around the answer's
    length, either at random (the answer is then mostly a middle length) or by a dealt rank."""
    deal, ranks, rows = PositionDealer(4, rng), PositionDealer(4, rng), []
    for i in range(n):
        size = int(rng.integers(1000, 2000))  # lengths seldom equal: ties are another cue
        band = [int(x) for x in rng.integers(int(size * 0.8), int(size * 1.2), 40)]
        if by_rank:
            picked, _ = draw_by_rank(band, band, size, 3, ranks(), rng)
        else:
            picked = [int(x) for x in rng.choice(band, 3, replace=False)]
        # distinct texts of the drawn lengths (equal lengths must not make equal options)
        answer, *others = [f"{i}.{j}.".ljust(n, "x") for j, n in enumerate([size, *picked])]
        opts = arrange(answer, others, deal())
        rows.append({"prompt": f"Which {i}?\n{lettered(opts)}", "answer": answer, "choices": opts})
    return pd.DataFrame(rows)


def test_audit_finds_a_middle_length_answer_and_dealt_ranks_remove_it():
    """Distractors of similar length, drawn at random, make the answer the shortest or the longest
    option only about a third as often as chance: the audit sees it, and ranks dealt by
    ``draw_by_rank`` leave nothing to see."""
    rng = np.random.default_rng(0)
    middle = surface_cue_accuracy(_band_mc(400, rng, False), _band_mc(400, rng, False))
    assert middle["accuracy"] > 0.35, middle
    dealt = surface_cue_accuracy(_band_mc(400, rng, True), _band_mc(400, rng, True))
    assert abs(dealt["accuracy"] - 0.25) < 0.06, dealt
    for by_rank in (False, True):
        ranks = _band_mc(200, rng, by_rank).apply(  # equal lengths (rare) count as shorter
            lambda r: sorted(map(len, r["choices"])).index(len(r["answer"])), axis=1)
        extremes = np.bincount(ranks, minlength=4)[[0, 3]]
        assert extremes.min() >= 40 if by_rank else extremes.max() < 35, (by_rank, extremes)
