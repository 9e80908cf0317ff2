"""Family ``instruction_alignment``: format-teaching questions whose answers are computed.

Cells: the top-ranked gene, the rank of a named gene, whether a gene is in the sentence.
DNA (a window cut to a random length): its GC-content bucket (multiple choice, windows drawn
bucket by bucket so each bucket is the answer equally often where the data allow) or, for one
window in ``length_every``, its length.
Proteins: the length, the count of one residue.

>>> gc_bucket(0.55, [0.4, 0.6])
'40% to 60%'
>>> bucket_names([0.4, 0.6])
['below 40%', '40% to 60%', 'above 60%']
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from tasks.problems.cells import genes_of
from tasks.problems.choices import PositionDealer
from tasks.problems.records import lettered, problem

CELL_INTRO = "Here is a cell sentence (genes of one cell, most highly expressed first).\n"
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"


def bucket_names(edges: list[float]) -> list[str]:
    pct = [f"{round(e * 100)}%" for e in edges]
    return [f"below {pct[0]}"] + [f"{a} to {b}" for a, b in zip(pct, pct[1:])] + [f"above {pct[-1]}"]


def gc_bucket(gc: float, edges: list[float]) -> str:
    return bucket_names(edges)[int(np.searchsorted(edges, gc, side="right"))]


def _row(kind: str, modality: str, entity: str, source: str, prompt: str, answer: str,
         answer_type: str, split_of: dict[str, str], evidence: dict, choices=None) -> dict:
    return problem(family="instruction_alignment", category="instruction_alignment", task_kind="",
                   modality=modality, prompt=prompt, answer=answer, answer_type=answer_type,
                   split=split_of[entity], entity=entity, source_ids=[source], choices=choices,
                   evidence={"kind": kind, **evidence}, key=kind)


def cell_problems(cells: pd.DataFrame, n: int, split_of: dict[str, str],
                  rng: np.random.Generator) -> list[dict]:
    chosen = cells.iloc[np.sort(rng.permutation(len(cells))[:n])]
    vocabulary = sorted({g for s in cells["cell_sentence"] for g in genes_of(s)})
    rows = []
    for i, cell in enumerate(chosen.itertuples(index=False)):
        genes, entity = genes_of(cell.cell_sentence), f"cell:{cell.cell_id}"
        kind = ("cell_top_gene", "cell_gene_rank", "cell_gene_present")[i % 3]
        if kind == "cell_top_gene":
            rows.append(_row(kind, "cell", entity, cell.cell_id,
                             f"{CELL_INTRO}{cell.cell_sentence}\nWhich gene is ranked first in this cell sentence?",
                             genes[0], "label", split_of, {"rank": 1}))
        elif kind == "cell_gene_rank":
            r = int(rng.integers(len(genes)))
            rows.append(_row(kind, "cell", entity, cell.cell_id,
                             f"{CELL_INTRO}{cell.cell_sentence}\nAt which rank (1 = first) does {genes[r]} "
                             f"appear in this cell sentence?", str(r + 1), "label", split_of,
                             {"gene": genes[r], "rank": r + 1}))
        else:
            present = (i // 3) % 2 == 0  # alternate so yes and no are equally frequent
            absent = [g for g in vocabulary if g not in set(genes)]
            if not present and not absent:
                present = True
            gene = genes[int(rng.integers(len(genes)))] if present else absent[int(rng.integers(len(absent)))]
            rows.append(_row(kind, "cell", entity, cell.cell_id,
                             f"{CELL_INTRO}{cell.cell_sentence}\nDoes {gene} appear in this cell sentence?",
                             "yes" if present else "no", "yes_no", split_of,
                             {"gene": gene, "rank": genes.index(gene) + 1 if present else None}))
    return rows


def dna_problems(dna: pd.DataFrame, n: int, min_len: int, edges: list[float],
                 split_of: dict[str, str], rng: np.random.Generator, length_every: int) -> list[dict]:
    windows = dna[dna["sequence"].str.len() >= min_len].reset_index(drop=True)
    cuts = []
    for w in windows.itertuples(index=False):
        length = int(rng.integers(min_len, len(w.sequence) + 1))
        start = int(rng.integers(0, len(w.sequence) - length + 1))
        seq = w.sequence[start:start + length]
        gc = (seq.count("G") + seq.count("C")) / len(seq)
        cuts.append((w.window_id, seq, gc, gc_bucket(gc, edges)))
    names = bucket_names(edges)
    by_bucket = {b: [c for c in cuts if c[3] == b] for b in names}
    order = [by_bucket[b][k] for b in names for k in rng.permutation(len(by_bucket[b]))]
    # interleave buckets so the first n cuts are as balanced as the data allow
    ranks = np.concatenate([np.arange(len(by_bucket[b])) for b in names]) if order else np.array([])
    picked = [order[k] for k in np.argsort(ranks, kind="stable")[:n]]
    # the GC questions take the first cuts, so their buckets are the balanced ones; the last
    # ceil(n / length_every) cuts are asked their length
    n_gc = len(picked) - math.ceil(len(picked) / length_every)
    deal = PositionDealer(len(names), rng)
    rows = []
    for i, (wid, seq, gc, bucket) in enumerate(picked):
        entity, shown = f"dna:{wid}", f"<dna>{seq}</dna>"
        evidence = {"length": len(seq), "gc": round(gc, 4), "gc_count": seq.count("G") + seq.count("C")}
        if i >= n_gc:
            rows.append(_row("dna_length", "dna", entity, wid,
                             f"How many bases long is this DNA sequence?\n{shown}", str(len(seq)),
                             "label", split_of, evidence))
        else:
            others = [b for b in names if b != bucket]
            options = [others[k] for k in rng.permutation(len(others))]
            options.insert(deal(), bucket)
            rows.append(_row("dna_gc_bucket", "dna", entity, wid,
                             f"What is the GC content of this DNA sequence?\n{shown}\n{lettered(options)}",
                             bucket, "multiple_choice", split_of, {**evidence, "edges": edges},
                             choices=options))
    return rows


def protein_problems(proteins: pd.DataFrame, n: int, max_len: int, split_of: dict[str, str],
                     rng: np.random.Generator) -> list[dict]:
    short = proteins[proteins["length"] <= max_len]
    chosen = short.iloc[np.sort(rng.permutation(len(short))[:n])]
    rows = []
    for i, p in enumerate(chosen.itertuples(index=False)):
        entity, shown = f"protein:{p.protein_id}", f"<protein>{p.sequence}</protein>"
        if i % 2 == 0:
            rows.append(_row("protein_length", "protein", entity, p.protein_id,
                             f"How many residues long is this protein?\n{shown}", str(len(p.sequence)),
                             "label", split_of, {"length": len(p.sequence)}))
        else:
            residue = AMINO_ACIDS[int(rng.integers(len(AMINO_ACIDS)))]
            count = p.sequence.count(residue)
            rows.append(_row("protein_residue_count", "protein", entity, p.protein_id,
                             f"How many {residue} residues does this protein contain?\n{shown}",
                             str(count), "label", split_of,
                             {"residue": residue, "count": count,
                              "positions": [k + 1 for k, a in enumerate(p.sequence) if a == residue]}))
    return rows
