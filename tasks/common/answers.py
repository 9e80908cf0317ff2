"""The one place answers are pulled out of completions, normalised and compared (GRPO and evaluate).

A completion answers only inside its answer tag; the tag name is configurable (Biomni uses
``solution``). The tag is matched case- and whitespace-tolerantly, the content is trimmed, and a
completion without a closed answer tag has no answer at all: guessing from free text would reward
answers the format reward is meant to forbid.

>>> extract_answer("<think>x</think>< ANSWER > B. TP53 </answer>")
'B. TP53'
>>> extract_answer("the answer is TP53") is None
True
>>> is_correct("b", "TP53", "multiple_choice", ["BRCA1", "TP53"])
True
>>> is_correct("tp53, brca1", "BRCA1,TP53", "gene_set")
True
>>> is_correct('{"disease_name": "x", "OMIM_ID": "OMIM:154700"}', '{"OMIM_ID": "154700"}', "json")
True
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

ANSWER_TYPES = ("label", "multiple_choice", "yes_no", "gene_set", "json")

_WS = re.compile(r"\s+")
_EDGE = " \t\n\"'`.,;:!"
_LETTER = re.compile(r"^[(\[]?([A-Za-z])[)\].:]?(?:\s+(.*))?$", re.S)
_GENE_SPLIT = re.compile(r"[,;\s]+")
_OMIM = re.compile(r"(?:OMIM|MIM)?\s*:?\s*#?\s*(\d{6})\b", re.I)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")

_BINARY = {
    "yes": "yes", "y": "yes", "true": "yes",
    "no": "no", "n": "no", "false": "no",
    "up": "up", "upregulated": "up", "up-regulated": "up", "increased": "up", "increase": "up",
    "down": "down", "downregulated": "down", "down-regulated": "down", "decreased": "down",
    "decrease": "down",
}


def completion_text(completion: Any) -> str:
    """The generated text of a TRL completion: a plain string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # content blocks: keep the text parts
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content)
    return ""


def _tag_pattern(tag: str) -> re.Pattern:
    name = re.escape(tag)
    return re.compile(rf"<\s*{name}\s*>(.*?)<\s*/\s*{name}\s*>", re.I | re.S)


def extract_answer(completion: Any, tag: str = "answer") -> str | None:
    """Trimmed content of the last ``<tag>...</tag>`` block; None if there is none or it is empty."""
    blocks = _tag_pattern(tag).findall(completion_text(completion))
    if not blocks:
        return None
    content = blocks[-1].strip()
    return content or None


def normalise_label(text: str) -> str:
    """Case-folded, single-spaced, without edge quotes or final punctuation; keeps + - / inside."""
    return _WS.sub(" ", text).strip(_EDGE).casefold()


def normalise_binary(text: str) -> str | None:
    """yes/no and up/down with their common spellings; None for anything else."""
    return _BINARY.get(normalise_label(text))


def normalise_gene_set(text: str) -> frozenset[str]:
    """Gene symbols split on commas, semicolons or whitespace, upper-cased (symbols ignore case)."""
    return frozenset(g.strip(_EDGE).upper() for g in _GENE_SPLIT.split(text) if g.strip(_EDGE))


def omim_id(value: Any) -> str | None:
    """The six-digit OMIM number in ``OMIM:154700``, ``MIM #154700`` or ``154700``; else None."""
    if value is None:
        return None
    match = _OMIM.search(str(value))
    return match.group(1) if match else None


def parse_json_answer(text: str) -> dict | None:
    """A JSON object from the answer, allowing a code fence or text around the braces."""
    body = _FENCE.sub("", text.strip())
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        value = json.loads(body[start:end + 1])
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def json_omim_id(text: str) -> str | None:
    """The OMIM id of a Biomni-style ``{"disease_name": ..., "OMIM_ID": ...}`` answer."""
    obj = parse_json_answer(text)
    if obj is None:
        return None
    for key, value in obj.items():
        if key.replace("_", "").casefold() == "omimid":
            return omim_id(value)
    return None


def choose(text: str, choices: Sequence[str]) -> int | None:
    """Index of the choice an answer names, by its letter (``B``, ``(B)``, ``B. text``) or its text.

    A letter followed by text must agree with that choice's text; a contradiction is no choice.

    >>> choose("(a)", ["up", "down"]), choose("Down", ["up", "down"]), choose("A. down", ["up", "down"])
    (0, 1, None)
    """
    wanted = normalise_label(text)
    texts = [normalise_label(c) for c in choices]
    if wanted in texts:
        return texts.index(wanted)
    match = _LETTER.match(text.strip())
    if not match:
        return None
    index = ord(match.group(1).upper()) - ord("A")
    if not 0 <= index < len(choices):
        return None
    rest = match.group(2)
    if rest and normalise_label(rest) != texts[index]:
        return None
    return index


def canonical(text: str | None, answer_type: str, choices: Sequence[str] | None = None) -> Any:
    """The comparable value of an answer text for its type; None when it cannot be read.

    label -> normalised text; multiple_choice -> the chosen choice's text; yes_no -> yes/no/up/down;
    gene_set -> frozenset of symbols; json -> the OMIM id.
    """
    if text is None:
        return None
    if answer_type == "label":
        return normalise_label(text) or None
    if answer_type == "multiple_choice":
        if not choices:
            raise ValueError("multiple_choice answer without choices")
        index = choose(text, list(choices))
        return None if index is None else choices[index]
    if answer_type == "yes_no":
        return normalise_binary(text)
    if answer_type == "gene_set":
        return normalise_gene_set(text) or None
    if answer_type == "json":
        return json_omim_id(text)
    raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {ANSWER_TYPES}")


def gold_canonical(answer: str, answer_type: str, choices: Sequence[str] | None = None) -> Any:
    """The comparable value of a problem's reference answer (the choice TEXT for multiple choice)."""
    if answer_type == "json":
        return json_omim_id(answer) or omim_id(answer)
    if answer_type == "multiple_choice":
        if not choices:
            raise ValueError("multiple_choice answer without choices")
        texts = [normalise_label(c) for c in choices]
        wanted = normalise_label(answer)
        if wanted not in texts:
            raise ValueError(f"reference answer {answer!r} is not one of the choices {list(choices)}")
        return choices[texts.index(wanted)]
    return canonical(answer, answer_type, choices)


def is_correct(text: str | None, answer: str, answer_type: str,
               choices: Sequence[str] | None = None) -> bool:
    """Whether an extracted answer text matches the reference answer (False when unreadable)."""
    claimed = canonical(text, answer_type, choices)
    if claimed is None:
        return False
    gold = gold_canonical(answer, answer_type, choices)
    if answer_type == "multiple_choice":
        return normalise_label(claimed) == normalise_label(gold)
    return claimed == gold


def claimed_text(text: str | None, answer_type: str, choices: Sequence[str] | None = None) -> str | None:
    """What an answer claims, as text a soft verifier can look up (the choice text for choices)."""
    if text is None:
        return None
    if choices is not None and len(choices):
        index = choose(text, list(choices))
        if index is not None:
            return choices[index]
        if answer_type == "multiple_choice":
            return None
    if answer_type == "json":
        obj = parse_json_answer(text)
        return None if obj is None else json.dumps(obj)
    return text
