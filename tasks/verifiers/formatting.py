"""The format rule (Biomni-R0 style): one think block, then one answer block, and nothing after.

Tags are matched like :func:`tasks.common.answers.extract_answer` reads them (case and inner
whitespace tolerated), so a completion that earns the format reward always yields an answer. The
reasoning block is always ``<think>`` (:data:`tasks.common.answers.THINK_TAG`); the answer tag is
``verifiers.answer_tag``.

>>> format_ok("<think>CD14 is high.</think>\\n<answer>CD14+ Monocyte</answer>\\n")
True
>>> format_ok("<think>a</think><answer>x</answer> more")   # text after the answer
False
>>> format_ok("<answer>x</answer>")                          # no reasoning block
False
>>> format_ok("<think>a</think><solution>x</solution>", answer_tag="solution")
True

On the answer-only prompt (``reasoning=False``) the well-formed reply is the answer block alone:

>>> format_ok("<answer>x</answer>", reasoning=False), format_ok("<think>a</think><answer>x</answer>", reasoning=False)
(True, False)
"""
from __future__ import annotations

import re
from typing import Any

from tasks.common.answers import ANSWER_TAG, THINK_TAG, completion_text


def _open(tag: str) -> str:
    return rf"<\s*{re.escape(tag)}\s*>"


def _close(tag: str) -> str:
    return rf"<\s*/\s*{re.escape(tag)}\s*>"


def format_ok(completion: Any, answer_tag: str = ANSWER_TAG, reasoning: bool = True) -> bool:
    """Whitespace, ``<think>`` reasoning ``</think>``, whitespace, ``<answer>`` non-empty answer
    ``</answer>``, whitespace; each tag exactly once. ``reasoning=False`` (the answer-only prompt):
    the answer block alone, and no ``<think>`` tag."""
    text = completion_text(completion)
    for tag, times in ((THINK_TAG, 1 if reasoning else 0), (answer_tag, 1)):
        if (len(re.findall(_open(tag), text, re.I)) != times
                or len(re.findall(_close(tag), text, re.I)) != times):
            return False
    think = rf"{_open(THINK_TAG)}(.*?){_close(THINK_TAG)}\s*" if reasoning else "()"
    shape = re.compile(rf"^\s*{think}{_open(answer_tag)}(.*?){_close(answer_tag)}\s*$", re.I | re.S)
    match = shape.match(text)
    return bool(match and (match.group(1).strip() or not reasoning) and match.group(2).strip())
