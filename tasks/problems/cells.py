"""Family ``cell_type``: a cell sentence -> its cell type (multiple choice, open label, and an
explanation variant asking for the marker genes of the given type that the cell expresses).

Evidence lists the marker genes (corpus ``markers``, Wilcoxon on the reference cells) of the true
type found in the sentence with their rank in the sentence and in the marker list, and, for
multiple choice, how many markers of each candidate type the sentence holds.

>>> genes_of("<cell>CD3D, LTB, IL7R</cell>")
['CD3D', 'LTB', 'IL7R']
>>> top_genes("<cell>CD3D, LTB, IL7R</cell>", 2)
'<cell>CD3D, LTB</cell>'
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tasks.problems.choices import PositionDealer, answer_frequencies, arrange, draw_distractors
from tasks.problems.records import lettered, problem

VARIANTS = ("multiple_choice", "label", "gene_set")
INTRO = ("Here is a cell sentence: the genes of one peripheral blood mononuclear cell, "
         "most highly expressed first.\n")


def genes_of(sentence: str) -> list[str]:
    """Gene names of a ``<cell>...</cell>`` sentence, in rank order."""
    body = sentence.removeprefix("<cell>").removesuffix("</cell>")
    return [g for g in re.split(r"\s*,\s*", body.strip()) if g]


def top_genes(sentence: str, n: int | None, separator: str = ", ") -> str:
    """The sentence cut to its ``n`` most expressed genes (``None``: unchanged).

    A cell's identity is carried by its top genes (a logistic regression on the top 10 genes of
    these cells' sentences classifies them as well as one on all 200), and every gene more is
    about four prompt tokens a small model must read on each training step.
    """
    if n is None:
        return sentence
    return "<cell>" + separator.join(genes_of(sentence)[:n]) + "</cell>"


def select_cells(cells: pd.DataFrame, per_type: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``per_type`` labelled cells of each type (the reference is very unbalanced)."""
    labelled = cells[cells["label"].notna()]
    picked = [group.iloc[rng.permutation(len(group))[:per_type]]
              for _, group in labelled.groupby("label", sort=True)]
    return pd.concat(picked).sort_values("cell_id", ignore_index=True)


def _markers_present(genes: list[str], markers: pd.DataFrame) -> list[dict]:
    where = {g: i + 1 for i, g in enumerate(genes)}
    return [{"gene": g, "sentence_rank": where[g], "marker_rank": int(r)}
            for g, r in zip(markers["gene"], markers["rank"]) if g in where]


def cell_type_problems(cells: pd.DataFrame, markers: pd.DataFrame, split_of: dict[str, str],
                       per_type: int, n_choices: int, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Rows of family ``cell_type``; variants rotate over the selected cells."""
    chosen = select_cells(cells, per_type, rng)
    by_type = {t: m.sort_values("rank") for t, m in markers.groupby("cell_type")}
    types = sorted(chosen["label"].unique())
    weights = answer_frequencies(list(chosen["label"]))
    deal = PositionDealer(n_choices, rng)
    rows, skipped = [], {"no_marker_in_sentence": 0, "type_without_markers": 0}
    for i, cell in enumerate(chosen.itertuples(index=False)):
        entity = f"cell:{cell.cell_id}"
        genes = genes_of(cell.cell_sentence)
        if cell.label not in by_type:
            skipped["type_without_markers"] += 1
            continue
        present = _markers_present(genes, by_type[cell.label])
        evidence = {"cell_type": cell.label, "n_genes_in_sentence": len(genes),
                    "markers_present": present}
        variant = VARIANTS[i % len(VARIANTS)]
        common = dict(family="cell_type", category="cell", modality="cell",
                      split=split_of[entity], entity=entity, source_ids=[cell.cell_id])
        if variant == "multiple_choice":
            distractors = draw_distractors(cell.label, types, n_choices - 1, rng, weights)
            if distractors is None:
                raise ValueError(f"cell_type: fewer than {n_choices} cell types to choose from")
            options = arrange(cell.label, distractors, deal())
            evidence["markers_per_choice"] = {t: len(_markers_present(genes, by_type[t]))
                                              for t in options if t in by_type}
            prompt = f"{INTRO}{cell.cell_sentence}\nWhich cell type is this cell?\n{lettered(options)}"
            rows.append(problem(task_kind="annotation", prompt=prompt, answer=cell.label,
                                answer_type="multiple_choice", evidence=evidence, choices=options,
                                key="mc", **common))
        elif variant == "label":
            prompt = f"{INTRO}{cell.cell_sentence}\nWhat is the cell type of this cell?"
            rows.append(problem(task_kind="annotation", prompt=prompt, answer=cell.label,
                                answer_type="label", evidence=evidence, key="open", **common))
        else:
            if not present:
                skipped["no_marker_in_sentence"] += 1
                continue
            answer = ", ".join(m["gene"] for m in sorted(present, key=lambda m: m["sentence_rank"]))
            prompt = (f"{INTRO}{cell.cell_sentence}\nThis cell is a {cell.label} cell. Which genes "
                      f"in its sentence are marker genes of that cell type? List them in sentence order.")
            rows.append(problem(task_kind="explanation", prompt=prompt, answer=answer,
                                answer_type="gene_set", evidence=evidence, key="explain", **common))
    return rows, skipped
