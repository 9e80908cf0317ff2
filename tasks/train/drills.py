"""Copy drills: made-up documents a model can continue only by looking back in its context.

A drill lists a few random gene-like names under letters, then names them again by letter, in a
shuffled order::

    A. RP
    B. DGR11
    C. RTOA10
    D. JUOB
    B is DGR11. C is RTOA10. A is RP. D is JUOB.

Each name after ``is`` is in the list above and nowhere else: the names are drawn at random, so no
memorised name helps, and writing one takes finding its letter's line and copying what follows,
the job of an induction head. The families whose test entities the model has never seen (a
patient's causal gene, the factor binding a window) ask it to write back a name it has only read in
its prompt; without this it cannot: the sft model finished 0 of 100 causal_gene and tf_binding
options from their first token, and 0.71 / 0.61 after 1,500 steps of this phase (README,
``bench/option_copy.py``). Random names also keep the drills free of every test entity.

The pretrain stage continues the pretrained model on drills mixed with corpus blocks
(``pretrain.drills``) and measures the lookup on drills it never trained on
(:func:`copy_accuracy`).

>>> print(drill(np.random.default_rng(0), options=2))
A. QNHIBB
B. QX
A is QNHIBB. B is QX.
>>> mix_blocks(np.zeros((2, 3), int), np.ones((5, 3), int), share=0.5, n_blocks=4, seed=0).sum().item()
6
"""
from __future__ import annotations

import re
import string
from typing import Any

import numpy as np

LETTERS = string.ascii_uppercase
_ASK = re.compile(r"[A-Z] is ([A-Z0-9]+)\.")  # "B is DGR11.": the name a drill asks for


def random_name(rng: np.random.Generator) -> str:
    """A gene-like symbol: 2-6 capital letters, digits after half of them (``JUOB``, ``DGR11``)."""
    letters = "".join(rng.choice(list(LETTERS), size=int(rng.integers(2, 7))))
    return letters + (str(int(rng.integers(1, 30))) if rng.random() < 0.5 else "")


def drill(rng: np.random.Generator, options: int = 4) -> str:
    """One drill: ``options`` distinct names under letters, then each named again by its letter."""
    names: list[str] = []
    while len(names) < options:
        name = random_name(rng)
        if name not in names:
            names.append(name)
    listing = "\n".join(f"{LETTERS[i]}. {n}" for i, n in enumerate(names))
    asks = " ".join(f"{LETTERS[i]} is {names[i]}." for i in rng.permutation(options))
    return f"{listing}\n{asks}"


def drills(n: int, seed: int, options: int = 4) -> list[str]:
    """``n`` drills from a generator of their own (the seed and a fixed offset: the corpus
    shuffle, seeded with ``seed`` alone, draws nothing in common with them)."""
    rng = np.random.default_rng([seed, 0xD1])
    return [drill(rng, options) for _ in range(n)]


def mix_blocks(drill_blocks: np.ndarray, corpus_blocks: np.ndarray, share: float, n_blocks: int,
               seed: int) -> np.ndarray:
    """``n_blocks`` packed blocks, ``round(share * n_blocks)`` of them drills and the rest corpus,
    each side repeating its blocks in a seeded order when it has too few, shuffled together."""
    rng = np.random.default_rng(seed)
    n_drill = round(share * n_blocks)

    def take(blocks: np.ndarray, k: int) -> np.ndarray:
        rounds = [rng.permutation(len(blocks)) for _ in range(-(-k // len(blocks)))]
        return blocks[np.concatenate(rounds)[:k]] if rounds else blocks[:0]

    mixed = np.concatenate([take(drill_blocks, n_drill), take(corpus_blocks, n_blocks - n_drill)])
    return mixed[rng.permutation(n_blocks)]


def copy_accuracy(model: Any, tokenizer: Any, docs: list[str]) -> dict[str, float]:
    """How often the model, teacher-forced on a drill, predicts the name after each ``L is``:
    ``first`` its first token (the lookup), ``rest`` every later token given the first (the
    copy), ``whole`` every token. Greedy decoding writes a name exactly when ``whole`` holds."""
    import torch

    first = rest = whole = total = 0
    for doc in docs:
        listing, asks = doc.rsplit("\n", 1)
        start = len(listing) + 1
        enc = tokenizer(doc, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = enc["input_ids"], enc["offset_mapping"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0]
        predicted = logits.argmax(-1).tolist()
        for ask in _ASK.finditer(asks):
            lo, hi = start + ask.start(1), start + ask.end(1)
            # the name's tokens: those that start inside it (a leading space belongs to it)
            span = [i for i, (a, b) in enumerate(offsets) if lo - 1 <= a < hi and b > a]
            right = [predicted[i - 1] == ids[i] for i in span if i > 0]
            first += right[0]
            rest += all(right[1:])
            whole += all(right)
            total += 1
    return {"first": first / total, "rest": rest / total, "whole": whole / total, "names": total}
