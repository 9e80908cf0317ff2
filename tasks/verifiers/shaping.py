"""Length and repetition shaping: small penalties (<= 0) that keep GRPO from rewarding rambling.

Length is counted in tokens when TRL passes ``completion_ids``, else in whitespace words.

>>> length_penalty(80, budget=100), length_penalty(150, budget=100), length_penalty(400, budget=100)
(0.0, -0.5, -1.0)
>>> repetition_penalty("a b c a b c a b c", n=3)
-0.571
>>> repetition_penalty("one two three four", n=3)
0.0
"""
from __future__ import annotations


def length_penalty(length: int, budget: int) -> float:
    """0 within the budget, then falling linearly to -1 at twice the budget (and staying there)."""
    if budget <= 0:
        raise ValueError("length budget must be positive")
    over = max(0, length - budget) / budget
    return -min(1.0, over) if over else 0.0


def repetition_penalty(text: str, n: int = 4) -> float:
    """Minus the fraction of word n-grams that repeat an earlier n-gram of the same completion."""
    words = text.split()
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    repeated = len(grams) - len(set(grams))
    return -round(repeated / len(grams), 3) if repeated else 0.0
