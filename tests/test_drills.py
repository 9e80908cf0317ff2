import re

import numpy as np
import torch

from tasks.lm.modeling import load_tokenizer
from tasks.train import drills


def test_a_drill_names_again_every_listed_name_by_its_letter():
    docs = drills.drills(50, seed=3, options=4)
    assert docs == drills.drills(50, seed=3, options=4) and docs != drills.drills(50, seed=4, options=4)
    for doc in docs:
        listing, asks = doc.rsplit("\n", 1)
        listed = dict(line.split(". ", 1) for line in listing.split("\n"))
        named = dict(re.findall(r"([A-Z]) is ([A-Z0-9]+)\.", asks))
        assert list(listed) == list("ABCD") and named == listed and len(set(listed.values())) == 4


def test_mix_blocks_gives_the_share_of_drills_and_repeats_a_short_side():
    drill_blocks, corpus_blocks = np.zeros((3, 2), int), np.arange(1, 41).reshape(20, 2)
    mixed = drills.mix_blocks(drill_blocks, corpus_blocks, share=0.4, n_blocks=10, seed=0)
    assert mixed.shape == (10, 2) and (mixed[:, 0] == 0).sum() == 4
    assert len({tuple(r) for r in mixed if r[0]}) == 6  # corpus blocks without repeats while they last
    assert not (mixed[:4, 0] == 0).all()  # shuffled together, not drills first
    assert (drills.mix_blocks(drill_blocks, corpus_blocks, 1.0, 7, 0) == 0).all()  # 3 blocks, 7 draws


class Oracle(torch.nn.Module):
    """Predicts the true next token of ``ids`` wherever ``right(char offset of that token)``."""

    def __init__(self, ids, offsets, right, vocab):
        super().__init__()
        self.ids, self.offsets, self.right, self.vocab = ids, offsets, right, vocab

    def forward(self, input_ids):
        logits = torch.zeros(1, len(self.ids), self.vocab)
        for i in range(len(self.ids) - 1):
            nxt = self.ids[i + 1]
            logits[0, i, nxt if self.right(self.offsets[i + 1][0]) else (nxt + 1) % self.vocab] = 1.0
        return type("Out", (), {"logits": logits})


def test_copy_accuracy_reads_only_the_names_after_is(tiny_base):
    tokenizer = load_tokenizer(tiny_base[0])
    doc = drills.drills(1, seed=0)[0]
    enc = tokenizer(doc, add_special_tokens=False, return_offsets_mapping=True)
    asks_start = doc.rindex("\n") + 1
    names = [(m.start(1), m.end(1)) for m in re.finditer(r" is ([A-Z0-9]+)", doc)]

    def score(right):
        model = Oracle(enc["input_ids"], enc["offset_mapping"], right, len(tokenizer))
        return drills.copy_accuracy(model, tokenizer, [doc])

    assert score(lambda at: True) == {"first": 1.0, "rest": 1.0, "whole": 1.0, "names": 4}
    # wrong everywhere but the names of the last line: still every name
    in_name = lambda at: any(a - 1 <= at < b for a, b in names)  # noqa: E731
    assert score(in_name)["whole"] == 1.0
    # wrong in the last line only: no name
    assert score(lambda at: at < asks_start - 1)["first"] == 0.0
    # wrong on every name's first token only: the lookup fails, the copy holds
    firsts = {min(i for i, (a, b) in enumerate(enc["offset_mapping"]) if a - 1 <= s < b or s - 1 <= a < e)
              for s, e in names}
    starts = {enc["offset_mapping"][i][0] for i in firsts}
    assert score(lambda at: at not in starts) == {"first": 0.0, "rest": 1.0, "whole": 0.0, "names": 4}
