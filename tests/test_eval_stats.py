"""Wilson intervals and the paired bootstrap of two checkpoints."""
import numpy as np
import pandas as pd
import pytest

from tasks.evaluate.stats import MEAN, accuracy_ci, align, paired_bootstrap, wilson


def test_wilson_matches_closed_form():
    k, n, z = 37, 80, 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low, high = wilson(k, n)
    assert low == pytest.approx(centre - half, abs=1e-9) and high == pytest.approx(centre + half, abs=1e-9)
    assert wilson(10, 10)[1] == pytest.approx(1.0)
    assert accuracy_ci([])["n"] == 0


def test_bootstrap_is_seeded_and_paired():
    rng = np.random.default_rng(1)
    a = rng.random(300) < 0.6
    b = a.copy()
    b[:30] = ~b[:30]  # b disagrees with a on 30 problems
    fam = np.array(["f1", "f2", "f3"] * 100)
    one = paired_bootstrap(a, b, fam, n_resamples=500, seed=7)
    two = paired_bootstrap(a, b, fam, n_resamples=500, seed=7)
    pd.testing.assert_frame_equal(one, two)
    assert list(one["family"]) == ["f1", "f2", "f3", MEAN]
    per = one.set_index("family")
    for f in ["f1", "f2", "f3"]:
        mask = fam == f
        assert per.loc[f, "diff"] == pytest.approx(a[mask].mean() - b[mask].mean())
        assert per.loc[f, "low"] <= per.loc[f, "diff"] <= per.loc[f, "high"]
    assert per.loc[MEAN, "diff"] == pytest.approx(per.loc[["f1", "f2", "f3"], "diff"].mean())
    same = paired_bootstrap(a, a, fam, n_resamples=200).set_index("family")
    assert (same["diff"] == 0).all() and (same["p_value"] == 1).all()


def test_bootstrap_detects_a_real_difference():
    a = np.array([1] * 60 + [0] * 40, dtype=bool)
    b = a.copy()
    b[:20] = False  # a is right on 20 problems where b is wrong, never the reverse
    row = paired_bootstrap(a, b, n_resamples=2000, seed=0).iloc[0]
    assert row["family"] == "all" and row["diff"] == pytest.approx(0.2)
    assert row["p_value"] < 0.01 and row["low"] > 0


def test_bootstrap_rejects_unpaired_input():
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1, 0, 1])
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1, 0], ["f"])


def test_align_refuses_different_problem_sets():
    x = pd.DataFrame({"problem_id": ["p1", "p2"], "family": ["f", "f"], "correct": [True, False]})
    y = pd.DataFrame({"problem_id": ["p1", "p3"], "family": ["f", "f"], "correct": [True, True]})
    with pytest.raises(ValueError, match="different problems"):
        align(x, y)
