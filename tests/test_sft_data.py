"""What an SFT phase trains on: balance by chats and by tokens (tasks/train/sft_data.py)."""
import pandas as pd

from tasks.train.sft_data import family_counts, family_quota, training_rows


def _chats():
    # "long": 30 chats of 900 tokens; "short": 40 of 100; "mid": 5 of 300 (repeated to fill)
    rows = ([("long", 900)] * 30 + [("short", 100)] * 40 + [("mid", 300)] * 5)
    return pd.DataFrame({"id": range(len(rows)), "family": [f for f, _ in rows],
                         "n_tokens": [n for _, n in rows]})


def test_token_cap_gives_long_families_fewer_chats_and_leaves_the_rest():
    chats = _chats()
    assert family_quota(chats, 20, 9000) == {"long": 10, "mid": 20, "short": 20}
    rows = training_rows(chats, epochs=3, per_family=20, seed=0, tokens_per_family=9000)
    assert family_counts(rows) == {"long": 30, "mid": 60, "short": 60}
    assert family_counts(rows, "n_tokens") == {"long": 27000, "mid": 18000, "short": 6000}
    # each epoch holds every family's quota: the cap is per epoch, not over the phase
    for epoch in range(3):
        part = rows.iloc[epoch * 50:(epoch + 1) * 50]
        assert family_counts(part) == {"long": 10, "mid": 20, "short": 20}


def test_no_cap_is_the_chat_balance_alone():
    chats = _chats()
    capped_high = training_rows(chats, 2, 20, seed=3, tokens_per_family=10**9)
    plain = training_rows(chats, 2, 20, seed=3)
    assert plain["id"].tolist() == capped_high["id"].tolist()


def test_token_cap_alone_balances_by_tokens():
    rows = training_rows(_chats(), epochs=1, per_family=None, seed=0, tokens_per_family=3000)
    assert family_counts(rows) == {"long": 3, "mid": 5, "short": 30}
    # a family's quota never falls below one chat, however long its chats
    assert family_quota(_chats(), None, 10) == {"long": 1, "mid": 1, "short": 1}
