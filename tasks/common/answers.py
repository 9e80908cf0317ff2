"""The answer contract: how a reply's answer is read, normalised and compared, in one place.

Annotate's reverse verification (did the solver reach the answer?), GRPO's correctness reward and
evaluate's scorer all decide with :func:`judge` (``extract_answer`` then ``is_correct``), so the
rule that filters training traces, the reward and the metric cannot drift apart.

**Reading the reply.** The answer is the trimmed content of the *last* ``<tag>...</tag>`` block
(``verifiers.answer_tag``; Biomni uses ``solution``); tag names ignore case and whitespace inside
the brackets. No closed tag, or an empty one, is no answer (wrong): guessing from free text would
reward what the format reward forbids. The reasoning block is always ``<think>`` (:data:`THINK_TAG`).

>>> extract_answer("<think>x</think><Answer> B. TP53 </ANSWER>")
'B. TP53'
>>> extract_answer("the answer is TP53") is None, extract_answer("<answer> </answer>") is None
(True, True)

**Writing the answer.** A reply names a multiple-choice option by its text, except when the
problem's options are too long to copy (:func:`by_letter`: a protein, a disease with its OMIM id);
then it names the option's letter, as the question lists it. SFT's targets, offline GRPO's traces,
the answer-format instruction and evaluate's option scoring all write answers with
:func:`written_answer`; reading accepts either form.

>>> written_answer("TP53", "multiple_choice", ["BRCA1", "TP53"])
'TP53'
>>> written_answer("<protein>MKV</protein>", "multiple_choice", ["<protein>M" + "S" * 40, "<protein>MKV</protein>"])
'B'

**Comparing, per answer type** (:data:`ANSWER_TYPES`):

* ``yes_no``: yes/no/true/false and up/down with their spellings (upregulated, up-regulated,
  increased, ...). A reply that *starts* with such a word followed by punctuation reads as that word
  ("Yes, clearly", "No. The motif is absent"); "no idea", "yes or no" or "the answer is yes" read
  as nothing.
* ``label``: the reply's text against the gold label (see *options* below, the gold being the only
  option, and no letters). A label whose gold is itself a yes/no/up/down word (PerturbQA direction)
  is compared as ``yes_no``.
* ``multiple_choice``: the reply selects an option, and that option must be the gold. It selects
  by (1) its text, equal to an option's after :func:`normalise_label`; else (2) loosely: letters
  and digits equal to exactly one option's, with only marks (``+ - /`` ...) *left out*, never
  changed; else (3) a letter ``B``, ``(b)``, ``B)``, ``B.`` whose following text, if any, must select
  the same option. A loose form that fits two options (``CD4 T cell`` between ``CD4+ T cell`` and
  ``CD4- T cell``), a letter out of range, or a letter contradicted by its text is no answer.
* ``gene_set``: symbols split on commas, semicolons or whitespace, upper-cased; order, case and
  repeats do not matter, the sets must be equal.
* ``json`` (Biomni-Eval1 rare disease): a JSON object, code fence or text around it allowed. When
  the gold carries an OMIM id, the id alone decides: another disease name with the right id is
  right, the right name with a wrong or missing id is wrong. A gold without an id is compared as a
  whole object (keys case-folded, values normalised).

>>> judge("<answer>yes, clearly</answer>", "yes", "yes_no"), judge("<answer>no idea</answer>", "no", "yes_no")
(True, False)
>>> judge("<Answer>upregulated</Answer>", "up", "label")
True
>>> judge("<answer>CD14 monocyte</answer>", "CD14+ Monocyte", "label")
True
>>> judge("<answer>CD14- monocyte</answer>", "CD14+ Monocyte", "label")
False
>>> judge("<answer>CD4 T cell</answer>", "CD4+ T cell", "multiple_choice", ["CD4+ T cell", "CD4- T cell"])
False
>>> judge("<answer>(b)</answer>", "TP53", "multiple_choice", ["BRCA1", "TP53"])
True
>>> judge("<answer>A. TP53</answer>", "TP53", "multiple_choice", ["BRCA1", "TP53"])
False
>>> judge("<answer>tp53, brca1</answer>", "BRCA1,TP53", "gene_set")
True
>>> gold = '{"disease_name": "Marfan syndrome", "OMIM_ID": "154700"}'
>>> judge('<answer>{"disease_name": "MFS", "OMIM_ID": "OMIM:154700"}</answer>', gold, "json")
True
>>> judge('<answer>{"disease_name": "Marfan syndrome", "OMIM_ID": "154705"}</answer>', gold, "json")
False
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

ANSWER_TYPES = ("label", "multiple_choice", "yes_no", "gene_set", "json")
THINK_TAG = "think"  # the reasoning block: format reward, SFT assistant turns, SFT system prompt
ANSWER_TAG = "answer"  # default of ``verifiers.answer_tag``
# The letters a question lists its options under (``A. first``); every module uses these.
LETTERS = "ABCDEFGHIJ"
# Options longer than this many characters are answered by letter. The embedded model loops when it
# copies a 180-residue protein (dna_to_protein: format 0.04) or a 56-character disease name; the
# families' longest options: cell_type 28, protein_family 27, rare_disease 39 to 158, proteins 74+.
LETTER_ABOVE = 32
# The answer follows its tag after a space, as lm-evaluation-harness puts one before a scored
# continuation: this byte-level BPE spells a name after a space (" Proteusin" -> " Pro", "te", ...)
# with other tokens than at the start of a text ("P", "ro", "te", ...), and every name a model reads
# (an option, a step of its reasoning) follows a space. Without it, given the gold trace the sft
# model answered protein_family at 0.28 against 0.75 with no trace at all (README, Results).
ANSWER_LEAD = " "


def tagged(answer: str, tag: str = ANSWER_TAG) -> str:
    """The answer block as SFT chats, traces and scored options write it.

    >>> tagged("B cell")
    '<answer> B cell</answer>'
    """
    return f"<{tag}>{ANSWER_LEAD}{answer}</{tag}>"

_WS = re.compile(r"\s+")
_EDGE = " \t\n\"'`.,;:!"
_LETTER = re.compile(r"^[(\[]?([A-Za-z])[)\].:]?(?:\s+(.*))?$", re.S)
_GENE_SPLIT = re.compile(r"[,;\s]+")
_OMIM = re.compile(r"(?:OMIM|MIM)?\s*:?\s*#?\s*(\d{6})\b", re.I)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")
_LEAD = re.compile(r"^([^\W\d_]+(?:-[^\W\d_]+)?)(?:\s*[,;:.!?(\[\u2013\u2014]|\s+-+\s)")
_NOT_ALNUM = re.compile(r"[\W_]")

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


def extract_answer(completion: Any, tag: str = ANSWER_TAG) -> str | None:
    """Trimmed content of the last ``<tag>...</tag>`` block; None if there is none or it is empty."""
    blocks = _tag_pattern(tag).findall(completion_text(completion))
    if not blocks:
        return None
    content = blocks[-1].strip()
    return content or None


def by_letter(answer_type: str, choices: Sequence[str] | None) -> bool:
    """Whether a reply names this problem's option by letter: a multiple-choice problem with an
    option longer than :data:`LETTER_ABOVE` characters."""
    return answer_type == "multiple_choice" and choices is not None and any(
        len(str(c)) > LETTER_ABOVE for c in choices)


def written_answer(answer: str, answer_type: str, choices: Sequence[str] | None) -> str:
    """How a reply writes ``answer`` (the gold or any other option): the option's letter when
    :func:`by_letter`, else the text unchanged (also for a text that is not an option)."""
    if not by_letter(answer_type, choices):
        return answer
    texts = [str(c) for c in choices]
    return LETTERS[texts.index(answer)] if answer in texts else answer


def normalise_label(text: str) -> str:
    """Case-folded, single-spaced, without edge quotes or final punctuation; keeps + - / inside."""
    return _WS.sub(" ", str(text)).strip(_EDGE).casefold()


def normalise_binary(text: str) -> str | None:
    """yes/no or up/down: the whole text, or its first word when punctuation follows it; else None.

    >>> normalise_binary("Up-regulated, strongly"), normalise_binary("no idea")
    ('up', None)
    """
    label = normalise_label(text)
    if label in _BINARY:
        return _BINARY[label]
    lead = _LEAD.match(label)
    return _BINARY.get(lead.group(1)) if lead else None


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


def _json_object(text: str) -> frozenset | None:
    obj = parse_json_answer(text)
    if obj is None:
        return None
    return frozenset((str(k).casefold(), normalise_label(json.dumps(v) if isinstance(v, (dict, list)) else v))
                     for k, v in obj.items())


def _skeleton(text: str) -> tuple[str, frozenset]:
    """Letters and digits of a normalised label, and its marks as (position among them, mark)."""
    kept, marks = [], set()
    for ch in normalise_label(text):
        if not _NOT_ALNUM.match(ch):
            kept.append(ch)
        elif not ch.isspace():
            marks.add((len(kept), ch))
    return "".join(kept), frozenset(marks)


def _loose_matches(text: str, options: Sequence[str]) -> list[int]:
    """Options whose letters and digits equal the text's, the text leaving marks out, never changing them."""
    core, marks = _skeleton(text)
    if not core:
        return []
    found = []
    for i, option in enumerate(options):
        o_core, o_marks = _skeleton(option)
        if o_core == core and marks <= o_marks:
            found.append(i)
    return found


def choose(text: str, choices: Sequence[str], letters: bool = True) -> int | None:
    """Index of the option an answer selects (see the module docstring), or None.

    >>> choose("(a)", ["up", "down"]), choose("Down", ["up", "down"]), choose("A. down", ["up", "down"])
    (0, 1, None)
    >>> choose("cd14 monocyte", ["B cell", "CD14+ Monocyte"]), choose("CD4 T", ["CD4+ T", "CD4- T"])
    (1, None)
    """
    wanted = normalise_label(text)
    texts = [normalise_label(c) for c in choices]
    if wanted in texts:
        return texts.index(wanted)
    loose = _loose_matches(text, choices)
    if loose:
        return loose[0] if len(loose) == 1 else None
    match = _LETTER.match(text.strip()) if letters else None
    if not match:
        return None
    index = LETTERS.find(match.group(1).upper())
    if not 0 <= index < len(choices):
        return None
    rest = match.group(2)
    if rest and choose(rest, choices, letters=False) != index:
        return None
    return index


def _kind(answer: str, answer_type: str) -> str:
    """The comparison an answer type gets; a label whose gold is yes/no/up/down is compared as one."""
    if answer_type not in ANSWER_TYPES:
        raise ValueError(f"unknown answer_type {answer_type!r}; expected one of {ANSWER_TYPES}")
    if answer_type == "label" and normalise_label(answer) in ("yes", "no", "up", "down"):
        return "yes_no"
    return answer_type


def gold_value(answer: str, answer_type: str, choices: Sequence[str] | None = None) -> Any:
    """The comparable value of a problem's reference answer (the option's text for multiple choice)."""
    kind = _kind(answer, answer_type)
    if kind == "multiple_choice":
        if not choices:
            raise ValueError("multiple_choice answer without choices")
        texts = [normalise_label(c) for c in choices]
        wanted = normalise_label(answer)
        if wanted not in texts:
            raise ValueError(f"reference answer {answer!r} is not one of the choices {list(choices)}")
        return choices[texts.index(wanted)]
    if kind == "yes_no":
        value = _BINARY.get(normalise_label(answer))
        if value is None:
            raise ValueError(f"reference answer {answer!r} is not a yes/no or up/down word")
        return value
    if kind == "gene_set":
        return normalise_gene_set(answer)
    if kind == "json":
        return json_omim_id(answer) or omim_id(answer) or _json_object(answer)
    return normalise_label(answer)


def claimed_value(text: str | None, answer: str, answer_type: str,
                  choices: Sequence[str] | None = None) -> Any:
    """The comparable value an extracted answer text claims for this problem; None if unreadable.

    Comparable with :func:`gold_value` by ``==``; a readable wrong label keeps its normalised text
    (macro-F1 counts it as a prediction of another class).
    """
    kind = _kind(answer, answer_type)
    if text is None:
        return None
    if kind == "yes_no":
        return normalise_binary(text)
    if kind == "multiple_choice":
        if not choices:
            raise ValueError("multiple_choice answer without choices")
        index = choose(text, list(choices))
        return None if index is None else choices[index]
    if kind == "label":
        options = list(choices) if choices else [answer]
        index = choose(text, options, letters=bool(choices))
        return normalise_label(options[index]) if index is not None else (normalise_label(text) or None)
    if kind == "gene_set":
        return normalise_gene_set(text) or None
    gold = json_omim_id(answer) or omim_id(answer)
    return json_omim_id(text) if gold else _json_object(text)


def is_correct(text: str | None, answer: str, answer_type: str,
               choices: Sequence[str] | None = None) -> bool:
    """Whether an extracted answer text gives the reference answer (False when unreadable)."""
    claimed = claimed_value(text, answer, answer_type, choices)
    return claimed is not None and claimed == gold_value(answer, answer_type, choices)


def judge(reply: Any, answer: str, answer_type: str, choices: Sequence[str] | None = None,
          tag: str = ANSWER_TAG) -> bool:
    """THE verdict: does a reply (text or chat completion) give the answer inside its answer tag?

    Annotate's reverse verification, GRPO's correctness reward and evaluate's scorer all call this.
    """
    return is_correct(extract_answer(reply, tag), answer, answer_type, choices)


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
