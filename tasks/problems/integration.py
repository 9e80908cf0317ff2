"""Family ``cell_dna_tf_expression`` (multi-omics integration): cell sentence + DNA window.

Question: a DNA window holds one planted binding site of a transcription factor that the cell
panel measures; is that factor expressed in this cell (is it in the cell sentence)? The DNA says
*which* factor (motif recognition), the cell says *what is expressed*; neither alone decides.
Problems come in quadruples over two factors A, B and two cells of the same split, c1 expressing
A but not B and c2 expressing B but not A: (c1, site A) yes, (c1, site B) no, (c2, site A) no,
(c2, site B) yes. So every window and every cell in the family is the right answer to both a yes
and a no question: either modality alone is at chance by construction (and the tests check it).

A site is kept only if no motif of another measured factor scores within ``margin`` of it
anywhere in the window (Biopython PSSM, both strands); similar factors (AP-1: FOS vs JUNB) thereby
drop out instead of making the answer ambiguous.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.problems.cells import genes_of
from tasks.problems.dna import background_windows, best_relative, cut, plant, pssm_of, relative_at, sample_site
from tasks.problems.records import problem

QUESTION = ("The DNA window below contains one binding site of a transcription factor, and that "
            "factor is one of the genes measured in this cell-sentence panel. Is the factor that "
            "binds this site expressed in this cell, that is, does it appear in the cell sentence?")


def eligible_motifs(motifs: pd.DataFrame, vocabulary: set[str]) -> pd.DataFrame:
    """Motifs of single TFs (no dimers) whose gene the cell sentences can mention."""
    return motifs[motifs["tf_name"].isin(vocabulary)].drop_duplicates("tf_name").reset_index(drop=True)


def _sites(motifs: pd.DataFrame, dna: pd.DataFrame, window: int, min_score: float, margin: float,
           tries: int, rng: np.random.Generator, stats: dict) -> dict[str, dict]:
    pssms = {m: pssm_of(p) for m, p in zip(motifs["motif_id"], motifs["pfm"])}
    backgrounds = background_windows(dna, window)
    out = {}
    for motif in motifs.itertuples(index=False):
        for _ in range(tries):
            bg_id, background = cut(backgrounds, window, rng)
            sequence, pos, strand = plant(background, sample_site(motif.pfm, rng), rng)
            score = relative_at(pssms[motif.motif_id], sequence, pos, strand)
            rivals = {m: best_relative(pssms[m], sequence)[0] for m in pssms if m != motif.motif_id}
            if score >= min_score and max(rivals.values(), default=0) < score - margin:
                out[motif.motif_id] = {"sequence": sequence, "position": pos, "strand": strand,
                                       "score": round(score, 4), "background_window": bg_id,
                                       "best_rival": round(max(rivals.values(), default=0), 4)}
                break
        else:
            stats["motifs_without_unambiguous_site"] += 1
    return out


def integration_problems(cells: pd.DataFrame, motifs: pd.DataFrame, dna: pd.DataFrame,
                         split_of: dict[str, str], n_quads: int, window: int, min_score: float,
                         margin: float, tries: int, rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Quadruples of yes/no problems per split (see module docstring)."""
    stats = {"eligible_motifs": len(motifs), "motifs_without_unambiguous_site": 0, "quads": {}}
    sites = _sites(motifs, dna, window, min_score, margin, tries, rng, stats)
    tf_of = dict(zip(motifs["motif_id"], motifs["tf_name"]))
    genes = {c: genes_of(s) for c, s in zip(cells["cell_id"], cells["cell_sentence"])}
    rank = {c: {g: i + 1 for i, g in enumerate(gs)} for c, gs in genes.items()}
    sentence = dict(zip(cells["cell_id"], cells["cell_sentence"]))
    rows = []
    for split in ("train", "test"):
        ms = sorted(m for m in sites if split_of[f"motif:{m}"] == split)
        cs = sorted(c for c in genes if split_of[f"cell:{c}"] == split)
        candidates = []
        for i, a in enumerate(ms):
            for b in ms[i + 1:]:
                c1 = [c for c in cs if tf_of[a] in rank[c] and tf_of[b] not in rank[c]]
                c2 = [c for c in cs if tf_of[b] in rank[c] and tf_of[a] not in rank[c]]
                if c1 and c2:
                    candidates.append((a, b, c1, c2))
        quota = max(1, round(n_quads * len(ms) / max(len(sites), 1)))
        order = [candidates[k] for k in rng.permutation(len(candidates))]
        used: set[tuple[str, str]] = set()
        made, attempt = 0, 0
        while made < quota and order and attempt < 4 * quota:
            a, b, c1s, c2s = order[attempt % len(order)]
            attempt += 1
            c1s = [c for c in c1s if (c, a) not in used and (c, b) not in used]
            c2s = [c for c in c2s if (c, a) not in used and (c, b) not in used]
            if not c1s or not c2s:
                continue
            c1, c2 = c1s[int(rng.integers(len(c1s)))], c2s[int(rng.integers(len(c2s)))]
            for cell, motif in ((c1, a), (c1, b), (c2, a), (c2, b)):
                used.add((cell, motif))
                rows.append(_row(cell, motif, tf_of[motif], sites[motif], rank[cell],
                                 sentence[cell], split, made))
            made += 1
        stats["quads"][split] = made
    return rows, stats


def _row(cell: str, motif: str, tf: str, site: dict, rank: dict[str, int], sentence: str,
         split: str, quad: int) -> dict:
    entity = f"motif:{motif}"
    expressed = tf in rank
    return problem(
        family="cell_dna_tf_expression", category="multiomics_integration", task_kind="annotation",
        modality="cell+dna",
        prompt=f"{QUESTION}\n{sentence}\n<dna>{site['sequence']}</dna>",
        answer="yes" if expressed else "no", answer_type="yes_no", split=split, entity=entity,
        source_ids=[cell, motif, site["background_window"]], key=cell,
        evidence={"cell_id": cell, "motif_id": motif, "tf_name": tf,
                  "site_position": site["position"], "site_strand": site["strand"],
                  "site_relative_score": site["score"], "best_rival_motif_score": site["best_rival"],
                  "tf_rank_in_sentence": rank.get(tf), "quad": quad})
