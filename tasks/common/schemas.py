"""Pandera contracts of every table that crosses a stage boundary (checked on write and on read).

>>> import pandas as pd
>>> Markers.validate(pd.DataFrame({"cell_type": ["B"], "gene": ["CD79A"], "rank": [1],
...                                "score": [9.1], "logfoldchange": [3.2]})).shape
(1, 5)
"""
from __future__ import annotations

import numpy as np
import pandera.pandas as pa
from pandera.typing import Series

from tasks.common.answers import ANSWER_TYPES

DNA_ALPHABET = frozenset("ACGTN")
PROTEIN_ALPHABET = frozenset("ACDEFGHIKLMNPQRSTVWYXBZUO")


class _Strict(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = True


# --- corpus -------------------------------------------------------------------------------------

class HpoTerms(_Strict):
    id: Series[str] = pa.Field(unique=True, str_matches=r"^HP:\d{7}$")
    name: Series[str]
    definition: Series[str]
    synonyms: Series[object]  # list[str]
    parents: Series[object]  # list[str] of HP ids; empty only for the root


class DiseasePhenotypes(_Strict):
    disease_id: Series[str] = pa.Field(str_matches=r"^(OMIM|ORPHA):\d+$")
    source: Series[str] = pa.Field(isin=["OMIM", "ORPHA"])
    disease_name: Series[str]
    hpo_id: Series[str] = pa.Field(str_matches=r"^HP:\d{7}$")


class GenePhenotypes(_Strict):
    gene_symbol: Series[str]
    gene_id: Series[int]
    hpo_id: Series[str] = pa.Field(str_matches=r"^HP:\d{7}$")


class DiseaseGenes(_Strict):
    disease_id: Series[str] = pa.Field(str_matches=r"^(OMIM|ORPHA):\d+$")
    gene_symbol: Series[str]


class Motifs(_Strict):
    motif_id: Series[str] = pa.Field(unique=True)
    tf_name: Series[str]
    tf_class: Series[str]
    tf_family: Series[str]
    length: Series[int] = pa.Field(gt=0)
    pfm: Series[object]  # list of positions, each [A, C, G, T] frequencies summing to 1
    counts_consistent: Series[bool]  # raw JASPAR counts summed to the same total at every position

    @pa.check("pfm", name="pfm rows are ACGT frequencies summing to 1")
    def _pfm_frequencies(cls, pfm: Series[object]) -> Series[bool]:
        def ok(m) -> bool:
            arr = np.asarray([list(row) for row in m], dtype=float)
            return arr.ndim == 2 and arr.shape[1] == 4 and bool((arr >= 0).all()) and \
                bool(np.allclose(arr.sum(axis=1), 1.0, atol=1e-6))
        return pfm.map(ok)


class ProteinFamilies(_Strict):
    name: Series[str] = pa.Field(unique=True)
    accession: Series[str]
    description: Series[str]
    length: Series[int] = pa.Field(gt=0)
    hmm_file: Series[str]


class PerturbPairs(_Strict):
    cell_line: Series[str]
    task: Series[str] = pa.Field(isin=["de", "dir"])
    pert: Series[str]
    gene: Series[str]
    label: Series[int] = pa.Field(isin=[0, 1])
    split: Series[str] = pa.Field(isin=["train", "test"])


class Markers(_Strict):
    cell_type: Series[str]
    gene: Series[str]
    rank: Series[int] = pa.Field(ge=1)
    score: Series[float]
    logfoldchange: Series[float] = pa.Field(nullable=True)


class MarkerCells(_Strict):
    """The reference cells the marker genes were computed from (train cells only)."""
    cell_id: Series[str] = pa.Field(unique=True)


class Documents(_Strict):
    doc_id: Series[str] = pa.Field(unique=True)
    source: Series[str]
    title: Series[str]
    text: Series[str] = pa.Field(str_length={"min_value": 1})
    n_words: Series[int] = pa.Field(ge=1)


# --- textify ------------------------------------------------------------------------------------

class CellSentences(pa.DataFrameModel):
    """One row per cell that passed QC; obs columns named in params are carried as ``obs_<key>``.

    ``n_genes`` counts expressed genes (value > 0) and ``total_counts`` sums the values read,
    both before normalisation; the sentence holds at most ``top_k`` of those genes.
    """

    cell_id: Series[str] = pa.Field(unique=True)
    label: Series[str] = pa.Field(nullable=True)
    n_genes: Series[int] = pa.Field(ge=0)
    total_counts: Series[float] = pa.Field(ge=0)
    cell_sentence: Series[str] = pa.Field(str_startswith="<cell>", str_endswith="</cell>")

    class Config:
        strict = False
        coerce = True


class DnaWindows(_Strict):
    """One row per window; ``gc`` is the G+C fraction of the window's known (non-N) bases."""

    window_id: Series[str] = pa.Field(unique=True)  # <source_file>:<record_id>:<start>-<end>
    record_id: Series[str]
    source_file: Series[str]
    start: Series[int] = pa.Field(ge=0)
    end: Series[int] = pa.Field(gt=0)
    gc: Series[float] = pa.Field(ge=0, le=1)
    sequence: Series[str] = pa.Field(str_matches=r"^[ACGTN]+$")
    text: Series[str] = pa.Field(str_startswith="<dna>", str_endswith="</dna>")


class ProteinSequences(_Strict):
    """One row per protein; record ids need only be unique within their file."""

    protein_id: Series[str] = pa.Field(unique=True)  # <source_file>:<record_id>
    record_id: Series[str]
    source_file: Series[str]
    description: Series[str]
    length: Series[int] = pa.Field(gt=0)
    sequence: Series[str] = pa.Field(str_matches=r"^[ACDEFGHIKLMNPQRSTVWYXBZUO]+$")
    text: Series[str] = pa.Field(str_startswith="<protein>", str_endswith="</protein>")


# --- problems -----------------------------------------------------------------------------------

# The one definition of the problem vocabulary; answer types belong to the answer contract.
CATEGORIES = ("cell", "dna", "protein", "multiomics_alignment", "multiomics_integration",
              "instruction_alignment", "clinical")
FAMILIES = ("cell_type", "perturb_de", "perturb_dir", "tf_binding", "protein_family",
            "rare_disease", "causal_gene", "dna_to_protein", "cell_dna_tf_expression",
            "instruction_alignment")
TASK_KINDS = ("annotation", "explanation", "")


class Problems(_Strict):
    """The problem set: one row per question; later stages add the system prompt and format."""

    id: Series[str] = pa.Field(unique=True)
    family: Series[str]
    category: Series[str] = pa.Field(isin=list(CATEGORIES))
    task_kind: Series[str] = pa.Field(isin=list(TASK_KINDS))
    modality: Series[str]
    prompt: Series[str] = pa.Field(str_length={"min_value": 1})
    answer: Series[str] = pa.Field(str_length={"min_value": 1})
    answer_type: Series[str] = pa.Field(isin=list(ANSWER_TYPES))
    choices: Series[object]  # list[str] in presented order; empty unless multiple choice
    evidence: Series[str]  # JSON object
    split: Series[str] = pa.Field(isin=["train", "test"])
    source_ids: Series[object]  # list[str]
    entity: Series[str] = pa.Field(str_length={"min_value": 1})

    @pa.check("evidence", name="evidence is a JSON object")
    def _evidence_json(cls, evidence: Series[str]) -> Series[bool]:
        import json

        def ok(text: str) -> bool:
            try:
                return isinstance(json.loads(text), dict)
            except ValueError:
                return False
        return evidence.map(ok)

    @pa.dataframe_check(name="multiple choice answers are one of the choices; others have none")
    def _choices_match(cls, df) -> Series[bool]:
        mc = df["answer_type"] == "multiple_choice"
        has = df["choices"].map(lambda c: c is not None and len(c) > 0)
        member = [a in list(c) if m else True for a, c, m in zip(df["answer"], df["choices"], mc)]
        return (mc == has) & np.array(member, dtype=bool)

    @pa.dataframe_check(name="yes_no answers are exactly yes or no")
    def _yes_no(cls, df) -> Series[bool]:
        return (df["answer_type"] != "yes_no") | df["answer"].isin(["yes", "no"])


# --- annotate -----------------------------------------------------------------------------------

TRACE_VARIANTS = ["gold", "short", "long", "redundant", "no_reason", "negative"]
TRACE_STATUSES = ["verified", "disagreed", "rejected", "derived"]


class Traces(_Strict):
    """Every annotated train problem: its gold trace and variants, or why it was rejected."""

    problem_id: Series[str]
    family: Series[str]
    variant: Series[str] = pa.Field(isin=TRACE_VARIANTS)
    steps: Series[object]  # list[str]; empty for a rejected problem
    conclusion: Series[str]
    answer: Series[str]  # the answer this trace gives (a negative's is wrong)
    gold_answer: Series[str]
    reward: Series[float] = pa.Field(nullable=True)  # null for a rejected problem
    status: Series[str] = pa.Field(isin=TRACE_STATUSES)
    teacher: Series[str]
    rejection_reason: Series[str] = pa.Field(nullable=True)


class SftChats(_Strict):
    """Chat-format SFT data: system, user (problem + answer format), assistant (think + answer, or
    the tagged answer alone in the answer-only chats)."""

    id: Series[str] = pa.Field(unique=True)
    family: Series[str]
    split: Series[str] = pa.Field(isin=["train"])
    messages: Series[object]  # list of {"role", "content"}

    @pa.check("messages", name="system, user, assistant turns; the assistant opens <think> or the answer tag")
    def _chat_turns(cls, messages: Series[object]) -> Series[bool]:
        def ok(turns) -> bool:
            turns = list(turns)
            roles = [t["role"] for t in turns]
            return roles == ["system", "user", "assistant"] and \
                all(isinstance(t["content"], str) and t["content"] for t in turns) and \
                turns[2]["content"].startswith("<") and turns[2]["content"].endswith(">")
        return messages.map(ok)


# --- evaluate -----------------------------------------------------------------------------------

class EvalPredictions(_Strict):
    """One row per checkpoint and test problem: the completion and how it was scored."""

    checkpoint: Series[str]
    problem_id: Series[str]
    family: Series[str]
    answer_type: Series[str] = pa.Field(isin=list(ANSWER_TYPES))
    answer: Series[str]
    completion: Series[str]
    extracted: Series[str] = pa.Field(nullable=True)  # content of the answer tag; null if none
    claimed: Series[str] = pa.Field(nullable=True)  # the choice/label the answer names
    correct: Series[bool]
    format_ok: Series[bool]
    completion_tokens: Series[int] = pa.Field(ge=0)
    p_positive: Series[float] = pa.Field(nullable=True, ge=0, le=1)  # P(yes)/P(up), PerturbQA only
    answer_forced: Series[bool]  # PerturbQA: the answer tag was appended to score P(yes)
