"""Format reward (Biomni-R0 style): one think block, then one answer block, and nothing after.

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
"""
from __future__ import annotations

import re
from typing import Any

from tasks.common.answers import ANSWER_TAG, THINK_TAG, completion_text


def _open(tag: str) -> str:
    return rf"<\s*{re.escape(tag)}\s*>"


def _close(tag: str) -> str:
    return rf"<\s*/\s*{re.escape(tag)}\s*>"


def format_ok(completion: Any, answer_tag: str = ANSWER_TAG) -> bool:
    """Whitespace, ``<think>`` reasoning ``</think>``, whitespace, ``<answer>`` non-empty answer
    ``</answer>``, whitespace; each tag exactly once."""
    text = completion_text(completion)
    for tag in (THINK_TAG, answer_tag):
        if len(re.findall(_open(tag), text, re.I)) != 1 or len(re.findall(_close(tag), text, re.I)) != 1:
            return False
    shape = re.compile(rf"^\s*{_open(THINK_TAG)}(.*?){_close(THINK_TAG)}\s*"
                       rf"{_open(answer_tag)}(.*?){_close(answer_tag)}\s*$", re.I | re.S)
    match = shape.match(text)
    return bool(match and match.group(1).strip() and match.group(2).strip())


def format_reward(completion: Any, answer_tag: str = ANSWER_TAG) -> float:
    """1.0 for a well-formed completion, 0.0 otherwise."""
    return 1.0 if format_ok(completion, answer_tag) else 0.0
