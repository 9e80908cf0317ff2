import pandas as pd
import pytest

from tasks.common.splits import LeakageError, assign_splits, check_families_present, check_leakage


def test_assign_is_exact_per_stratum_and_deterministic():
    ents = [f"e{i}" for i in range(50)]
    strata = {e: ("a" if i < 10 else "b") for i, e in enumerate(ents)}
    s1 = assign_splits(ents, 0.2, seed=3, strata=strata)
    assert s1 == assign_splits(list(reversed(ents)), 0.2, seed=3, strata=strata)
    assert sum(s1[e] == "test" for e in ents[:10]) == 2
    assert sum(s1[e] == "test" for e in ents[10:]) == 8
    assert s1 != assign_splits(ents, 0.2, seed=4, strata=strata)


def test_small_stratum_reaches_both_splits():
    s = assign_splits(["x", "y"], 0.1, seed=0)
    assert sorted(s.values()) == ["test", "train"]


def test_leakage_check_fails_on_entity_in_both_splits():
    ok = pd.DataFrame({"entity": ["a", "a", "b"], "split": ["train", "train", "test"],
                       "family": ["f", "g", "f"]})
    check_leakage(ok)
    with pytest.raises(LeakageError, match="'a'"):
        check_leakage(ok.assign(split=["train", "test", "test"]))


def test_empty_family_in_a_split_is_an_error():
    df = pd.DataFrame({"family": ["f", "f", "g"], "split": ["train", "test", "train"]})
    check_families_present(df, ["f"])
    with pytest.raises(LeakageError, match="g/test"):
        check_families_present(df, ["f", "g"])
