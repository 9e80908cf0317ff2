"""Restructure teacher output into one schema, compare answers, and derive multi-trace variants.

A trace is ``{"steps": [str, ...], "conclusion": str}``. :func:`parse_trace` accepts a teacher's
reply only if it is that JSON object (code fences allowed), has at least ``min_steps`` non-empty
steps and a conclusion, and does not name the answer in step 1 (a rationale that opens with the
answer explains nothing). :func:`same_answer` compares a solver's answer with the gold one by
answer type. :func:`variants` turns one verified gold trace into BiomniGEM's fixed-reward variants.

>>> parse_trace('```json\\n{"steps": ["a", "b"], "conclusion": "c"}\\n```', "x", "label", [])
(Trace(steps=['a', 'b'], conclusion='c'), None)
>>> parse_trace('{"steps": ["It is a B cell.", "b"], "conclusion": "c"}', "B cell", "label", [])[1]
'answer_leaked_in_step1'
>>> same_answer("A", "T cell", "multiple_choice", ["B cell", "T cell"])
False
>>> same_answer("b. t cell", "T cell", "multiple_choice", ["B cell", "T cell"])
True
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from tasks.common.answers import parse_json_answer

ANSWER_TYPES = ("label", "multiple_choice", "yes_no", "gene_set", "json")


@dataclass(frozen=True)
class Trace:
    steps: list[str]
    conclusion: str


def _norm(text: str) -> str:
    return re.sub(r"[\s\W_]+", " ", str(text).casefold()).strip()


def _contains(haystack: str, needle: str) -> bool:
    needle = _norm(needle)
    return bool(needle) and f" {needle} " in f" {_norm(haystack)} "


def leaks_answer(step: str, answer: str, answer_type: str, choices: list[str]) -> bool:
    """Step names the answer verbatim and singles it out (naming every option is not a leak)."""
    if answer_type == "yes_no" or len(_norm(answer)) <= 4:
        # a yes/no or a short word (up, down) also occurs in ordinary prose: only a stated answer leaks
        return bool(re.search(rf"\banswer\b[^.]*\b{re.escape(_norm(answer))}\b", _norm(step)))
    if answer_type == "json":
        obj = parse_json_answer(answer)
        values = [str(v) for v in obj.values()] if obj else [answer]
        return any(_contains(step, v) for v in values if len(_norm(v)) >= 3)
    if not _contains(step, answer):
        return False
    others = [c for c in choices if _norm(c) != _norm(answer)]
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


def extract_tagged(text: str | None, tag: str) -> str | None:
    """Content of the last ``<tag>...</tag>`` in ``text``.

    >>> extract_tagged("<think>x</think><answer> yes </answer>", "answer")
    'yes'
    """
    if not text:
        return None
    found = re.findall(rf"<{re.escape(tag)}>(.*?)</{re.escape(tag)}>", text, flags=re.S)
    return found[-1].strip() if found else None


def _choice_text(pred: str, choices: list[str]) -> str:
    letter = re.fullmatch(r"\(?([A-Za-z])[).:]?(?:\s+(.*))?", pred.strip())
    if letter and choices:
        index = ord(letter.group(1).upper()) - ord("A")
        if 0 <= index < len(choices) and (letter.group(2) is None or
                                          _norm(letter.group(2)) == _norm(choices[index])):
            return choices[index]
    return pred


def same_answer(pred: str | None, gold: str, answer_type: str, choices: list[str]) -> bool:
    """Does ``pred`` give the gold answer? Letters count for multiple choice; sets ignore order."""
    if pred is None:
        return False
    if answer_type == "multiple_choice":
        return _norm(_choice_text(pred, choices)) == _norm(gold)
    if answer_type == "yes_no":
        words = _norm(pred).split()
        return bool(words) and words[0] == _norm(gold)
    if answer_type == "gene_set":
        split = lambda s: {g.upper() for g in re.split(r"[\s,;]+", s.strip()) if g}  # noqa: E731
        return split(pred) == split(gold)
    if answer_type == "json":
        a, b = parse_json_answer(pred), parse_json_answer(gold)
        if a is None or b is None:
            return False
        ids = [k for k in b if "id" in k.lower()]
        if ids:  # Biomni-Eval1 scores rare-disease answers on the identifier alone
            return all(_norm(a.get(k, "")) == _norm(b[k]) for k in ids)
        return {k.lower(): _norm(v) for k, v in a.items()} == {k.lower(): _norm(v) for k, v in b.items()}
    return _norm(pred) == _norm(gold)


def wrong_answer(gold: str, answer_type: str, choices: list[str], pool: list[str],
                 rng: random.Random) -> str | None:
    """A plausible wrong answer: another option, the flipped yes/no, or another problem's answer."""
    if answer_type == "yes_no":
        return "no" if _norm(gold) == "yes" else "yes"
    candidates = [c for c in (choices or pool) if not same_answer(c, gold, answer_type, choices)]
    return rng.choice(sorted(set(candidates))) if candidates else None


def render_assistant(steps: list[str], conclusion: str, answer: str, tag: str) -> str:
    """The assistant turn: numbered steps and the conclusion in <think>, the answer in the tag.

    >>> render_assistant(["a", "b"], "so c", "c", "answer")
    '<think>\\n1. a\\n2. b\\nso c\\n</think>\\n<answer>c</answer>'
    """
    body = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps))
    return f"<think>\n{body}\n{conclusion}\n</think>\n<{tag}>{answer}</{tag}>"


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
        out.append(("negative", steps, f"Therefore the answer is {wrong}.", wrong))
    return [{"variant": name, "steps": list(s), "conclusion": c, "answer": a,
             "reward": float(cfg[name]["reward"])} for name, s, c, a in out]
