"""Family ``tf_binding``: a DNA window with one planted binding site -> which TF among choices.

A site is sampled position by position from a JASPAR PFM and planted (either strand) in a random
window of real genomic sequence from ``data/textify/dna.parquet``. Biopython's PSSM (log-odds
against a uniform background, scores rescaled to 0..1 between the matrix's min and max) confirms
the label: the planted site must score at least ``min_site_score`` for the true motif, and every
distractor's best score anywhere in the window, on either strand, must stay ``margin`` below it;
otherwise the distractors are redrawn and, after that, the site, and the rejection is counted.
Distractors come from TF classes other than the true one, so the question has one answer.

>>> import numpy as np
>>> pfm = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
>>> pssm = pssm_of(pfm)
>>> round(best_relative(pssm, "TTTTACGTTTT")[0], 3), best_relative(pssm, "TTTTACGTTTT")[1]
(1.0, 4)
>>> sample_site(pfm, np.random.default_rng(0))
'ACGT'
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from Bio import motifs
from Bio.Seq import Seq

from tasks.problems.choices import PositionDealer, UsageBalancer, arrange, same_split
from tasks.problems.records import lettered, problem

PSEUDO_SITES = 100  # frequencies are scaled to this many sites before adding one pseudocount
QUESTION = ("This DNA window contains one binding site of a transcription factor. "
            "Which transcription factor's motif does it contain?")


def pssm_of(pfm) -> motifs.matrix.PositionSpecificScoringMatrix:
    """Biopython PSSM of a PFM (positions x ACGT frequencies), uniform background."""
    arr = np.asarray([list(row) for row in pfm], dtype=float) * PSEUDO_SITES
    motif = motifs.Motif(alphabet="ACGT", counts={b: arr[:, i].tolist() for i, b in enumerate("ACGT")})
    return motif.counts.normalize(pseudocounts=1.0).log_odds()


def best_relative(pssm, sequence: str) -> tuple[float, int, str]:
    """Best 0..1-rescaled score of ``pssm`` over both strands: (score, position, strand)."""
    if len(sequence) < pssm.length:
        return 0.0, -1, "+"
    seq = Seq(sequence)
    fwd = np.nan_to_num(np.asarray(pssm.calculate(seq), dtype=float), nan=-1e9)
    rev = np.nan_to_num(np.asarray(pssm.reverse_complement().calculate(seq), dtype=float), nan=-1e9)
    lo, hi = pssm.min, pssm.max
    i, j = int(fwd.argmax()), int(rev.argmax())
    best, pos, strand = (fwd[i], i, "+") if fwd[i] >= rev[j] else (rev[j], j, "-")
    return float((best - lo) / (hi - lo)), pos, strand


def relative_at(pssm, sequence: str, pos: int, strand: str) -> float:
    site = Seq(sequence[pos:pos + pssm.length])
    matrix = pssm if strand == "+" else pssm.reverse_complement()
    score = float(np.asarray(matrix.calculate(site), dtype=float).ravel()[0])
    return (score - pssm.min) / (pssm.max - pssm.min)


def sample_site(pfm, rng: np.random.Generator) -> str:
    """One site drawn base by base from the PFM's frequencies."""
    arr = np.asarray([list(row) for row in pfm], dtype=float)
    return "".join("ACGT"[rng.choice(4, p=row / row.sum())] for row in arr)


def background_windows(dna: pd.DataFrame, length: int) -> pd.DataFrame:
    """Windows of real sequence long enough to cut ``length`` bases from, without N."""
    ok = (dna["sequence"].str.len() >= length) & ~dna["sequence"].str.contains("N")
    if not ok.any():
        raise ValueError(f"no DNA window of {length} bases without N in data/textify/dna.parquet")
    return dna.loc[ok, ["window_id", "sequence"]].reset_index(drop=True)


def plant(background: str, site: str, rng: np.random.Generator) -> tuple[str, int, str]:
    """Put ``site`` (as is, or reverse-complemented) at a random position of ``background``."""
    strand = "+" if rng.random() < 0.5 else "-"
    text = site if strand == "+" else str(Seq(site).reverse_complement())
    pos = int(rng.integers(0, len(background) - len(site) + 1))
    return background[:pos] + text + background[pos + len(site):], pos, strand


def cut(backgrounds: pd.DataFrame, length: int, rng: np.random.Generator) -> tuple[str, str]:
    row = backgrounds.iloc[int(rng.integers(len(backgrounds)))]
    start = int(rng.integers(0, len(row["sequence"]) - length + 1))
    return row["window_id"], row["sequence"][start:start + length]


def classes(tf_class: str) -> frozenset[str]:
    return frozenset(c.strip() for c in tf_class.split(";") if c.strip())


def tf_binding_problems(motif_table: pd.DataFrame, dna: pd.DataFrame, split_of: dict[str, str],
                        n_motifs: int, window: int, min_site_score: float, margin: float,
                        n_choices: int, tries: int, rng: np.random.Generator,
                        train_windows: int = 1) -> tuple[list[dict], dict]:
    """Rows of ``tf_binding``: ``train_windows`` per selected train motif, each its own window,
    site and distractors, and one per test motif (the motif is the split entity; one problem a test
    motif keeps the test problems independent, as the intervals assume)."""
    known = motif_table[motif_table["tf_class"] != "unknown"]
    n_known = len(known)
    # options are TF names and splits are by motif: one motif per name, or a name would be a train
    # answer (through one motif) and a test answer or distractor (through another)
    known = known.drop_duplicates("tf_name")
    chosen = known.iloc[np.sort(rng.permutation(len(known))[:n_motifs])].reset_index(drop=True)
    backgrounds = background_windows(dna, window)
    cls = [classes(c) for c in chosen["tf_class"]]
    pssms = [pssm_of(p) for p in chosen["pfm"]]
    # distractors come from the motif's own split (choices.same_split); within it, a motif of a big
    # class may serve as a distractor for fewer questions: weight it up so every TF name is a
    # distractor about equally often (its text then says nothing about being right)
    split = [split_of[f"motif:{m}"] for m in chosen["motif_id"]]
    peers = [same_split(range(len(chosen)), split.__getitem__, s) for s in split]
    allowed_share = np.array([np.mean([not (c & cls[j]) for j in peers[i]]) for i, c in enumerate(cls)])
    weight = np.where(allowed_share > 0, 1 / np.maximum(allowed_share, 1e-9), 0.0)
    deal, balancer = PositionDealer(n_choices, rng), UsageBalancer()
    rows, stats = [], {"unknown_class_skipped": int(len(motif_table) - n_known),
                       "same_name_motifs_skipped": int(n_known - len(known)),
                       "weak_site_redrawn": 0, "ambiguous_distractors_redrawn": 0,
                       "problems_rejected": 0, "motifs_without_distractors": 0}
    copies = [(i, k) for i in range(len(chosen))
              for k in range(train_windows if split[i] == "train" else 1)]
    for i, k in copies:
        motif = chosen.iloc[i]
        ok = [j for j in peers[i] if not (cls[i] & cls[j])
              and chosen.at[j, "tf_name"] != motif["tf_name"]]
        if len(ok) < n_choices - 1:  # too few factors of other classes in the motif's split
            stats["motifs_without_distractors"] += int(k == 0)  # once a motif, not a window
            continue
        made = None
        for _ in range(tries):
            bg_id, background = cut(backgrounds, window, rng)
            sequence, pos, strand = plant(background, sample_site(motif["pfm"], rng), rng)
            site_score = relative_at(pssms[i], sequence, pos, strand)
            if site_score < min_site_score:
                stats["weak_site_redrawn"] += 1
                continue
            for _ in range(tries):
                w = weight[ok] * balancer.weights(ok)
                w = w / w.sum()
                picked = rng.choice(ok, size=n_choices - 1, replace=False, p=w)
                if len({chosen.at[j, "tf_name"] for j in picked}) < n_choices - 1:
                    continue
                scores = {int(j): best_relative(pssms[j], sequence) for j in picked}
                if max(s[0] for s in scores.values()) < site_score - margin:
                    made = (bg_id, sequence, pos, strand, site_score, picked, scores)
                    break
                stats["ambiguous_distractors_redrawn"] += 1
            if made:
                break
        if made is None:
            stats["problems_rejected"] += 1
            continue
        bg_id, sequence, pos, strand, site_score, picked, scores = made
        balancer.record(picked.tolist())
        options = arrange(motif["tf_name"], [chosen.at[j, "tf_name"] for j in picked], deal())
        entity = f"motif:{motif['motif_id']}"
        evidence = {"motif_id": motif["motif_id"], "tf_name": motif["tf_name"],
                    "tf_class": motif["tf_class"], "site_position": pos, "site_strand": strand,
                    "site_length": int(motif["length"]),
                    "site": sequence[pos:pos + int(motif["length"])],
                    "site_relative_score": round(site_score, 4), "background_window": bg_id,
                    "distractors": [{"tf_name": chosen.at[j, "tf_name"], "motif_id": chosen.at[j, "motif_id"],
                                     "tf_class": chosen.at[j, "tf_class"],
                                     "best_relative_score": round(s[0], 4), "best_position": s[1]}
                                    for j, s in scores.items()]}
        rows.append(problem(
            family="tf_binding", category="dna", task_kind="annotation", modality="dna",
            prompt=f"{QUESTION}\n<dna>{sequence}</dna>\n{lettered(options)}",
            answer=motif["tf_name"], answer_type="multiple_choice", split=split_of[entity],
            entity=entity, source_ids=[motif["motif_id"], bg_id], evidence=evidence,
            choices=options, key="site" if k == 0 else f"site{k + 1}"))
    return rows, stats
