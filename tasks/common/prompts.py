"""Every prompt, in one place, overridable by files a user drops in a folder.

The teacher sees the problem, the correct answer and the evidence (asymmetric information) and is
asked to write the path from the data to the answer *without* saying it was given the answer. The
solver sees the question and the steps only. The SFT system prompt and the answer-format
instructions are what the trained model will see: :func:`problem_messages` builds them, the one
prompt builder of SFT (annotate), GRPO and evaluate, and :func:`render_assistant` the one format of
an assistant turn (reasoning in ``<think>``, the answer in ``verifiers.answer_tag``).

A user overrides any prompt by putting ``<name>.txt`` in the folder named by
``annotate.prompts_dir``; names are the keys of :data:`PROMPTS` (``teacher_cell``,
``teacher_clinical``, ``solver``, ``format_multiple_choice``, ...). Templates use ``str.format``
fields; an override that drops a field the stage fills in fails at load with the field named.

>>> p = load_prompts(None)
>>> "{answer}" in p["teacher_user"] and "{question}" in p["solver"]
True
>>> answer_format(p, "yes_no", "answer")
'Finish with your final answer, yes or no, inside <answer></answer>.'
>>> [m["role"] for m in problem_messages({"prompt": "Which cell?", "answer_type": "label"}, p, "answer")]
['system', 'user']
"""
from __future__ import annotations

import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, get_args

from tasks.common.answers import THINK_TAG, by_letter, tagged, written_answer


TEACHER_SYSTEM = """\
You are an expert computational biologist writing a worked solution for a student.
You will be shown a problem, its correct answer and the evidence behind it. Write the reasoning a
careful scientist would follow from the data in the problem to that answer, as if you were solving
it yourself: never say or imply that the answer or the evidence was given to you, and do not name
the answer in the first step. Every step must state one concrete observation or inference and cite
the data it rests on (gene names and ranks, positions and scores, phenotype names). If the evidence
does not support the stated answer, argue for what the evidence does support.
Reply with JSON only, exactly: {{"steps": ["...", "..."], "conclusion": "..."}}"""

# What to look at, per problem category: the teacher's domain-specific guidance.
TEACHER_FOCUS = {
    "cell": "The data is a cell sentence: gene names ordered by expression, highest first. Look "
            "for marker genes of the candidate cell types, note their ranks, and weigh how many "
            "strong markers of each type appear near the top.",
    "dna": "The data is a DNA sequence. Scan it for transcription-factor binding motifs: name the "
           "position of the best match, its position-specific score against the motif's "
           "threshold, and what the match means for the question.",
    "protein": "The data is a protein sequence. Reason from conserved domains: which family "
               "profile matches, with what bit score and E-value, and what that implies.",
    "multiomics_alignment": "The problem links two modalities (for example a DNA sequence and "
                            "proteins). Derive one from the other step by step (reading frame, "
                            "translation, comparison) and show where they agree.",
    "multiomics_integration": "The problem combines several data types. Extract the signal of "
                              "each one first, then show how they combine to one answer.",
    "instruction_alignment": "The answer is computed from the data. Show the computation in "
                             "short steps.",
    "clinical": "The data are a patient's phenotypes or a perturbation experiment. Match the "
                "observed phenotypes (or the perturbation's known neighbours) to the candidates, "
                "counting the specific shared findings, and rank the candidates by them.",
}

TEACHER_USER = """\
Problem:
{question}

Correct answer (do not reveal that you were given it): {answer}

Evidence you may cite:
{evidence}
{passages}
{focus}
{length}"""

# How long the teacher's rationale is, per ``annotate.trace_style``.
TRACE_LENGTH = {
    "full": "Write between 3 and 8 steps. The conclusion states the answer.",
    "short": "Write 2 to 5 short steps. Each states one observation that can be read from the "
             "problem itself (a gene and its rank, a matching stretch of sequence, a shared "
             "phenotype); weigh the candidates in the order the problem lists them. The conclusion "
             "states the answer.",
}

PASSAGES = """
Background passages (cite them if they help):
{passages}
"""

SOLVER = """\
Below is a problem and the first steps of a worked solution. Use the steps to finish the solution.

Problem:
{question}

Steps:
{steps}

{answer_format}"""

# How a problem prompt shows its omics and its options (``tasks.problems.records.lettered``):
# what controls blank and what pretraining must not have seen are the omics of the question lines.
OMICS_SPAN = re.compile(r"<(cell|dna|protein)>(.*?)</\1>", re.S)
OPTION_LINE = re.compile(r"^[A-Z]\. ")


def question_lines(prompt: str) -> list[str]:
    """The lines of a problem prompt that are not its lettered options.

    >>> question_lines("Which gene?\\n<dna>AC</dna>\\nA. TP53\\nB. BRCA1")
    ['Which gene?', '<dna>AC</dna>']
    """
    return [line for line in prompt.split("\n") if not OPTION_LINE.match(line)]


# How a problem is put to the model: think, then answer (SFT_SYSTEM); or answer at once
# (SFT_SYSTEM_DIRECT). GRPO rollouts and evaluate's log-likelihood modes are chosen from these.
PromptStyle = Literal["reasoned", "direct"]
PROMPT_STYLES: tuple[str, ...] = get_args(PromptStyle)

SFT_SYSTEM = (f"You are a biology reasoning assistant. Think step by step inside <{THINK_TAG}></{THINK_TAG}>, "
              "then give the final answer inside <{tag}></{tag}>.")
# The answer-only mode (like a chat model's thinking switch): the same problems, answered at once.
SFT_SYSTEM_DIRECT = ("You are a biology reasoning assistant. Give only the final answer, inside "
                     "<{tag}></{tag}>, without reasoning.")

FORMATS = {
    "label": "Finish with your final answer, the name only, inside <{tag}></{tag}>.",
    "multiple_choice": "Finish with the text of the correct option inside <{tag}></{tag}>.",
    # options too long to copy (tasks.common.answers.by_letter)
    "letter": "Finish with the letter of the correct option inside <{tag}></{tag}>.",
    "yes_no": "Finish with your final answer, yes or no, inside <{tag}></{tag}>.",
    "gene_set": "Finish with the genes, comma-separated, inside <{tag}></{tag}>.",
    "json": "Finish with the JSON object of the answer inside <{tag}></{tag}>.",
}

PROMPTS: dict[str, str] = {
    "teacher_system": TEACHER_SYSTEM,
    "teacher_user": TEACHER_USER,
    "passages": PASSAGES,
    "solver": SOLVER,
    "sft_system": SFT_SYSTEM,
    "sft_system_direct": SFT_SYSTEM_DIRECT,
    **{f"teacher_{c}": text for c, text in TEACHER_FOCUS.items()},
    **{f"length_{style}": text for style, text in TRACE_LENGTH.items()},
    **{f"format_{kind}": text for kind, text in FORMATS.items()},
}

# Fields the stage fills into each template: an override must keep them.
REQUIRED_FIELDS = {
    "teacher_user": {"question", "answer", "evidence", "passages", "focus", "length"},
    "passages": {"passages"},
    "solver": {"question", "steps", "answer_format"},
    "sft_system": {"tag"},
    "sft_system_direct": {"tag"},
    **{f"format_{kind}": {"tag"} for kind in FORMATS},
}


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def load_prompts(override_dir: str | Path | None) -> dict[str, str]:
    """The built-in prompts, with ``<name>.txt`` files from ``override_dir`` replacing them."""
    prompts = dict(PROMPTS)
    if not override_dir:
        return prompts
    folder = Path(override_dir)
    if not folder.is_dir():
        raise ValueError(f"{folder}: prompts folder: not a directory")
    for file in sorted(folder.glob("*.txt")):
        name = file.stem
        if name not in PROMPTS:
            raise ValueError(f"{file}: prompt {name!r}: unknown name (known: {', '.join(sorted(PROMPTS))})")
        text = file.read_text()
        missing = REQUIRED_FIELDS.get(name, set()) - _fields(text)
        if missing:
            raise ValueError(f"{file}: prompt {name!r}: missing field(s) {sorted(missing)}")
        prompts[name] = text
    return prompts


def answer_format(prompts: dict[str, str], answer_type: str, tag: str,
                  choices: Sequence[str] | None = None) -> str:
    """The instruction appended to a problem so the model answers in the tag the verifiers read,
    in the form :func:`tasks.common.answers.written_answer` writes.

    >>> answer_format(load_prompts(None), "multiple_choice", "answer", ["A" * 40, "B"])
    'Finish with the letter of the correct option inside <answer></answer>.'
    """
    kind = "letter" if by_letter(answer_type, choices) else answer_type
    return prompts[f"format_{kind}"].format(tag=tag)


def teacher_messages(prompts: dict[str, str], category: str, question: str, answer: str,
                     evidence: str, passages: list[str], style: str = "full") -> list[dict[str, str]]:
    """System + user messages for the teacher, with the category's focus, optional passages and
    the length of the ``style`` (``annotate.trace_style``)."""
    block = ""
    if passages:
        block = prompts["passages"].format(
            passages="\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages)))
    user = prompts["teacher_user"].format(question=question, answer=answer, evidence=evidence,
                                          passages=block, focus=prompts[f"teacher_{category}"],
                                          length=prompts[f"length_{style}"])
    return [{"role": "system", "content": prompts["teacher_system"].format()},
            {"role": "user", "content": user}]


def solver_messages(prompts: dict[str, str], question: str, steps: list[str], answer_type: str,
                    tag: str, choices: Sequence[str] | None = None) -> list[dict[str, str]]:
    """The solver's single user message: the question and numbered steps, no answer, no conclusion."""
    numbered = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(steps))
    return [{"role": "user", "content": prompts["solver"].format(
        question=question, steps=numbered, answer_format=answer_format(prompts, answer_type, tag, choices))}]


def problem_messages(rec: dict, prompts: dict[str, str], tag: str, think: bool = True) -> list[dict[str, str]]:
    """System + user turns of a problem (``rec`` has ``prompt``, ``answer_type`` and, for multiple
    choice, ``choices``): what the policy sees in SFT, GRPO and evaluation. ``think=False``: the
    answer-only system prompt."""
    user = f"{rec['prompt']}\n\n{answer_format(prompts, rec['answer_type'], tag, rec.get('choices'))}"
    system = prompts["sft_system" if think else "sft_system_direct"].format(tag=tag)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def render_assistant(steps: list[str], conclusion: str, answer: str, tag: str) -> str:
    """The assistant turn: numbered steps and the conclusion, if any, in <think>, the answer in the tag.

    >>> render_assistant(["a", "b"], "so c", "c", "answer")
    '<think>\\n1. a\\n2. b\\nso c\\n</think>\\n<answer> c</answer>'
    >>> render_assistant(["a", "b"], "", "c", "answer")
    '<think>\\n1. a\\n2. b\\n</think>\\n<answer> c</answer>'
    """
    lines = [f"{i + 1}. {s}" for i, s in enumerate(steps)] + ([conclusion] if conclusion else [])
    body = "\n".join(lines)
    return f"<{THINK_TAG}>\n{body}\n</{THINK_TAG}>\n{tagged(answer, tag)}"


def sft_messages(rec: dict, steps: list[str], conclusion: str, answer: str,
                 prompts: dict[str, str], tag: str) -> list[dict[str, str]]:
    """A whole SFT chat: the problem's turns and the rendered assistant turn, its answer as a reply
    writes it (:func:`tasks.common.answers.written_answer`)."""
    said = written_answer(answer, rec["answer_type"], rec.get("choices"))
    return problem_messages(rec, prompts, tag) + [
        {"role": "assistant", "content": render_assistant(steps, conclusion, said, tag)}]


def direct_messages(rec: dict, answer: str, prompts: dict[str, str], tag: str) -> list[dict[str, str]]:
    """A whole answer-only SFT chat: the problem under the answer-only system prompt, then the
    tagged answer as a reply writes it (what evaluate's ``direct`` log-likelihood mode scores).

    >>> direct_messages({"prompt": "Which?", "answer_type": "label"}, "B cell", load_prompts(None), "answer")[-1]
    {'role': 'assistant', 'content': '<answer> B cell</answer>'}
    >>> rec = {"prompt": "Which?", "answer_type": "multiple_choice", "choices": ["x" * 40, "y" * 40]}
    >>> direct_messages(rec, "y" * 40, load_prompts(None), "answer")[-1]["content"]
    '<answer> B</answer>'
    """
    said = written_answer(answer, rec["answer_type"], rec.get("choices"))
    return problem_messages(rec, prompts, tag, think=False) + [
        {"role": "assistant", "content": tagged(said, tag)}]
