"""The row every family emits, the shared prompt pieces, and the stage's column contract.

>>> r = problem("tf_binding", "dna", "annotation", "dna", "Which TF?", "SPI1", "multiple_choice",
...             "test", "motif:MA0080.6", ["MA0080.6"], {"site": 3}, choices=["GATA1", "SPI1"],
...             key="w1")
>>> r["id"], r["answer"], r["evidence"]
('tf_binding-5c12e93f2e49', 'SPI1', '{"site": 3}')
>>> lettered(["GATA1", "SPI1"])
'A. GATA1\\nB. SPI1'
"""
from __future__ import annotations

import hashlib
import json
import re
import zlib
from typing import Any

import numpy as np

from tasks.common.answers import LETTERS

COLUMNS = ["id", "family", "category", "task_kind", "modality", "prompt", "answer", "answer_type",
           "choices", "evidence", "split", "source_ids", "entity"]
_TOKEN = re.compile(r"\w+|[^\w\s]")


def problem(family: str, category: str, task_kind: str, modality: str, prompt: str, answer: str,
            answer_type: str, split: str, entity: str, source_ids: list[str],
            evidence: dict[str, Any], choices: list[str] | None = None, key: str = "") -> dict:
    """One problem row; the id hashes family + entity + key, so it is stable for a given seed."""
    digest = hashlib.sha1(f"{family}|{entity}|{key}".encode()).hexdigest()[:12]
    return {"id": f"{family}-{digest}", "family": family, "category": category,
            "task_kind": task_kind, "modality": modality, "prompt": prompt, "answer": answer,
            "answer_type": answer_type, "choices": list(choices or []),
            "evidence": json.dumps(evidence, sort_keys=True, default=_plain),
            "split": split, "source_ids": [str(s) for s in source_ids], "entity": entity}


def _plain(value: Any) -> Any:
    # numpy scalars/arrays in evidence dicts become JSON numbers and lists
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def lettered(choices: list[str]) -> str:
    """Choices as the prompt shows them: ``A. first``, one per line."""
    return "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(choices))


def family_rng(seed: int, family: str) -> np.random.Generator:
    """A generator per family, so adding a family never changes another family's draws."""
    return np.random.default_rng([seed, zlib.crc32(family.encode())])


def count_tokens(text: str) -> int:
    """Regex word/punctuation tokens (no tokenizer exists before the pretrain stage).

    >>> count_tokens("<cell>CD3D, LTB</cell>")
    10
    """
    return len(_TOKEN.findall(text))
