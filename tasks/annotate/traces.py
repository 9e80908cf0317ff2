"""Restructure teacher output into one schema, compare answers, and derive multi-trace variants.

A trace is ``{"steps": [str, ...], "conclusion": str}``. :func:`parse_trace` accepts a teacher's
reply only if it is that JSON object (code fences allowed), has at least ``min_steps`` non-empty
steps and a conclusion, and does not name the answer in step 1 (a rationale that opens with the
answer explains nothing). Answers are compared by the answer contract (``tasks.common.answers``),
never here. :func:`variants` turns one verified gold trace into BiomniGEM's fixed-reward variants.

>>> parse_trace('```json\\n{"steps": ["a", "b"], "conclusion": "c"}\\n```', "x", "label", [])
(Trace(steps=['a', 'b'], conclusion='c'), None)
>>> parse_trace('{"steps": ["It is a B cell.", "b"], "conclusion": "c"}', "B cell", "label", [])[1]
'answer_leaked_in_step1'
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from tasks.common.answers import is_correct, normalise_binary, parse_json_answer


@dataclass(frozen=True)
class Trace:
    steps: list[str]
    conclusion: str


def _words(text: str) -> str:
    """Lower-case words separated by single spaces: for finding a phrase in prose (leaks), not for
    comparing answers (that is ``tasks.common.answers``)."""
    return re.sub(r"[\s\W_]+", " ", str(text).casefold()).strip()


def _contains(haystack: str, needle: str) -> bool:
    needle = _words(needle)
    return bool(needle) and f" {needle} " in f" {_words(haystack)} "


def leaks_answer(step: str, answer: str, answer_type: str, choices: list[str]) -> bool:
    """Step names the answer verbatim and singles it out (naming every option is not a leak)."""
    if answer_type == "yes_no" or len(_words(answer)) <= 4:
        # a yes/no or a short word (up, down) also occurs in ordinary prose: only a stated answer leaks
        return bool(re.search(rf"\banswer\b[^.]*\b{re.escape(_words(answer))}\b", _words(step)))
    if answer_type == "json":
        obj = parse_json_answer(answer)
        values = [str(v) for v in obj.values()] if obj else [answer]
        return any(_contains(step, v) for v in values if len(_words(v)) >= 3)
    if not _contains(step, answer):
        return False
    others = [c for c in choices if _words(c) != _words(answer)]
    return not (others and all(_contains(step, c) for c in others))


def parse_trace(text: str | None, answer: str, answer_type: str, choices: list[str],
                min_steps: int = 2) -> tuple[Trace | None, str | None]:
    """(trace, None) when the reply fits the schema, else (None, reason)."""
    if text is None:
        return None, "no_reply"
    obj = parse_json_answer(text)
    if obj is None:
        return None, "bad_json"
    steps, conclusion = obj.get("steps"), obj.get("conclusion")
    if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
        return None, "missing_steps"
    steps = [s.strip() for s in steps if s.strip()]
    if len(steps) < min_steps:
        return None, "too_few_steps"
    if not isinstance(conclusion, str) or not conclusion.strip():
        return None, "missing_conclusion"
    if leaks_answer(steps[0], answer, answer_type, choices):
        return None, "answer_leaked_in_step1"
    return Trace(steps, conclusion.strip()), None


def as_trained(trace: Trace, style: str) -> Trace:
    """The trace as SFT and offline GRPO render it: a ``short`` trace ends on its last step and
    states the answer once, in the answer tag; ``full`` keeps the teacher's conclusion.

    A conclusion that restates the answer put the answer text twice in every short chat, once before
    ``.`` and once before ``</answer>``; the embedded model mixed the two up (48% of its malformed
    replies: ``Therefore the answer is X</answer>`` with no answer tag, or ``<answer>X.`` then
    ``</think>`` again).

    >>> as_trained(Trace(["a", "b"], "Therefore c."), "short"), as_trained(Trace(["a"], "c"), "full")
    (Trace(steps=['a', 'b'], conclusion=''), Trace(steps=['a'], conclusion='c'))
    """
    return trace if style == "full" else Trace(trace.steps, "")


def wrong_answer(gold: str, answer_type: str, choices: list[str], pool: list[str],
                 rng: random.Random) -> str | None:
    """A plausible wrong answer: another option, the flipped yes/no, or another problem's answer."""
    if answer_type == "yes_no":
        return "no" if normalise_binary(gold) == "yes" else "yes"
    candidates = [c for c in (choices or pool) if not is_correct(c, gold, answer_type, choices)]
    return rng.choice(sorted(set(candidates))) if candidates else None


# --- multi-trace variants (BiomniGEM) -----------------------------------------------------------

def _keep(steps: list[str], fraction: float, rng: random.Random) -> list[str]:
    """A ``fraction`` of the steps in their order; the last step always stays (it reaches the end)."""
    n = max(1, math.ceil(fraction * len(steps)))
    if n >= len(steps):
        return list(steps)
    kept = sorted(rng.sample(range(len(steps) - 1), n - 1)) + [len(steps) - 1]
    return [steps[i] for i in kept]


def _insert(steps: list[str], extra: list[str], rng: random.Random) -> list[str]:
    out = list(steps)
    for step in extra:  # never after the last step, so the trace still ends on its own reasoning
        out.insert(rng.randint(0, len(out) - 1), step)
    return out


def _first_clause(step: str) -> str:
    clause = re.split(r"(?<=[.;:])\s+", step, maxsplit=1)[0]
    return f"As noted, {clause[0].lower()}{clause[1:]}" if clause else step


def variants(problem_id: str, trace: Trace, answer: str, answer_type: str, choices: list[str],
             extraneous_pool: list[str], answer_pool: list[str], cfg: dict, seed: int) -> list[dict]:
    """Gold, short, long, redundant, no-reason and negative traces of one verified gold trace.

    ``cfg`` maps variant -> {"fraction": float, "reward": float} (fractions: steps kept for short
    and no_reason, steps added relative to the gold length for long and redundant).
    """
    rng = random.Random(f"{seed}:{problem_id}")
    steps = trace.steps
    n_long = max(1, round(cfg["long"]["fraction"] * len(steps)))
    pool = [s for s in extraneous_pool if s not in steps]
    n_dup = max(1, round(cfg["redundant"]["fraction"] * len(steps)))
    dup_at = set(rng.sample(range(len(steps)), min(n_dup, len(steps))))
    redundant = [part for i, s in enumerate(steps)
                 for part in ([s, _first_clause(s)] if i in dup_at else [s])]
    out = [("gold", steps, trace.conclusion, answer),
           ("short", _keep(steps, cfg["short"]["fraction"], rng), trace.conclusion, answer),
           ("redundant", redundant, trace.conclusion, answer),
           ("no_reason", _keep(steps, cfg["no_reason"]["fraction"], rng), trace.conclusion, answer)]
    if len(pool) >= n_long:
        out.append(("long", _insert(steps, rng.sample(pool, n_long), rng), trace.conclusion, answer))
    wrong = wrong_answer(answer, answer_type, choices, answer_pool, rng)
    if wrong is not None:
        # Wrong answer on top of the gold reasoning: the conclusion no longer follows from it.
        out.append(("negative", steps, f"Therefore the answer is {wrong}." if trace.conclusion else "", wrong))
    return [{"variant": name, "steps": list(s), "conclusion": c, "answer": a,
             "reward": float(cfg[name]["reward"])} for name, s, c, a in out]
