"""What an SFT phase trains on: every family balanced per epoch (tasks/train/sft_data.py)."""
import pandas as pd
import pytest

from tasks.train.sft_data import UnknownFamilyError, family_counts, training_rows


def _chats():
    # "big": 30 chats (subsampled to per_family); "small": 5 (repeated to fill it)
    families = ["big"] * 30 + ["small"] * 5
    return pd.DataFrame({"id": range(len(families)), "family": families})


def test_each_epoch_holds_every_family_per_family_times():
    rows = training_rows(_chats(), epochs=3, per_family=20, seed=0)
    for epoch in range(3):
        part = rows.iloc[epoch * 40:(epoch + 1) * 40]
        assert family_counts(part) == {"big": 20, "small": 20}
        # a subsampled family never repeats a chat within an epoch; a small one is seen 4 times over
        assert part[part["family"] == "big"]["id"].is_unique
        assert part[part["family"] == "small"]["id"].value_counts().tolist() == [4] * 5
    # a fresh subset each epoch: over three epochs the big family shows more than one epoch's 20
    assert rows[rows["family"] == "big"]["id"].nunique() > 20


def test_unbalanced_is_every_chat_once_per_epoch_and_seeded():
    rows = training_rows(_chats(), epochs=2, per_family=None, seed=1)
    assert len(rows) == 70 and rows["id"].value_counts().eq(2).all()
    assert rows["id"].tolist() == training_rows(_chats(), 2, None, seed=1)["id"].tolist()
    assert rows["id"].tolist() != training_rows(_chats(), 2, None, seed=2)["id"].tolist()


def test_a_family_of_long_chats_is_capped_by_tokens_per_family():
    chats = _chats().assign(n_tokens=[10] * 30 + [100] * 5)   # "small" has the long chats
    rows = training_rows(chats, epochs=2, per_family=20, seed=0, tokens_per_family=300)
    # 300 // 10 = 30 > 20: "big" keeps per_family; 300 // 100 = 3 long chats an epoch
    assert family_counts(rows) == {"big": 40, "small": 6}
    assert family_counts(rows.iloc[:23]) == {"big": 20, "small": 3}
    # without per_family the cap alone balances: "big" is held to its 30 chats, "small" to 3
    assert family_counts(training_rows(chats, 1, None, seed=0, tokens_per_family=300)) == {"big": 30, "small": 3}


def test_family_chats_sets_a_named_familys_count_and_leaves_the_others():
    chats = pd.DataFrame({"id": [f"c{i}" for i in range(40)], "family": ["big"] * 30 + ["small"] * 10,
                          "n_tokens": [100] * 40})
    rows = training_rows(chats, epochs=3, per_family=20, seed=0, family_chats={"small": 25})
    assert family_counts(rows) == {"big": 60, "small": 75}
    # 25 of 10 chats: each twice an epoch, and 5 more drawn afresh
    first_epoch = rows.iloc[:45]
    assert first_epoch[first_epoch.family == "small"]["id"].value_counts().between(2, 3).all()
    assert family_counts(training_rows(chats, 3, per_family=20, seed=0)) == {"big": 60, "small": 60}


def test_family_chats_naming_a_family_the_data_lacks_is_an_error():
    chats = pd.DataFrame({"id": ["a", "b"], "family": ["x", "y"], "n_tokens": [10, 10]})
    with pytest.raises(UnknownFamilyError, match=r"\['cell_typ'\].*\['x', 'y'\]"):
        training_rows(chats, epochs=1, per_family=2, seed=0, family_chats={"cell_typ": 5})
