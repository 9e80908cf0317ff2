"""What the offline teacher knows: the corpus's knowledge tables, turned into citable facts.

For each problem family, :func:`family_facts` reads the data in the problem (the cell sentence,
the DNA or protein sequence, the patient's phenotypes, the knockdown and gene) and the problem's
evidence, and scores every candidate answer with the knowledge the corpus stage built: marker
genes per cell type, JASPAR position frequency matrices, Pfam/antiSMASH profile HMMs, HPO
disease and gene annotations, PerturbQA's training pairs. Each fact is a dict naming its form
(see ``tasks.annotate.rationales.FORMS``) and the fields the rationale cites.

The scores are recomputed, not copied from the answer, so a fact set can favour a candidate other
than the label: a cell whose sentence ranks B-cell markers highest is argued to be a B cell even
when its label says otherwise. That is what lets reverse verification reject traces.
"""
from __future__ import annotations

import math
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common.answers import LETTERS, by_letter
from tasks.common.errors import InputError

_TAG = {tag: re.compile(rf"<{tag}>(.*?)</{tag}>", re.S) for tag in ("cell", "dna", "protein")}
_HPO_ID = re.compile(r"HP:\d{7}")
_DISEASE_ID = re.compile(r"((?:OMIM|ORPHA):\d+)")
COMPLEMENT = str.maketrans("ACGTN", "TGCAN")
RELATIVE_THRESHOLD = 0.8  # a motif site counts at 80% of the PWM's score range (a common default)


def tagged(prompt: str, tag: str) -> str:
    found = _TAG[tag].search(prompt)
    if not found:
        raise ValueError(f"no <{tag}> data in the problem")
    return found.group(1).strip()


class Knowledge:
    """The corpus tables, loaded on first use (a family's facts load only what they need)."""

    def __init__(self, corpus_dir: str | Path):
        self.dir = Path(corpus_dir)

    def _table(self, name: str) -> pd.DataFrame:
        path = self.dir / f"{name}.parquet"
        if not path.exists():
            raise InputError(path, "file", "missing: run the corpus stage (dvc repro corpus)")
        return pd.read_parquet(path)

    @cached_property
    def markers(self) -> dict[str, list[str]]:
        df = self._table("markers").sort_values(["cell_type", "rank"])
        return {t: list(g["gene"]) for t, g in df.groupby("cell_type", sort=True)}

    @cached_property
    def motifs(self) -> pd.DataFrame:
        return self._table("motifs").set_index("motif_id")

    @cached_property
    def hmms(self) -> dict:
        import pyhmmer

        from tasks.corpus.knowledge import hmm_dir

        out = {}
        for file in sorted(set(self._table("protein_families")["hmm_file"])):
            with pyhmmer.plan7.HMMFile(hmm_dir() / file) as fh:
                for hmm in fh:
                    name = hmm.name.decode() if isinstance(hmm.name, bytes) else hmm.name
                    if hmm.alphabet.is_amino():
                        out[name] = hmm
        return out

    @cached_property
    def disease_phenotypes(self) -> pd.DataFrame:
        return self._table("disease_phenotypes")

    @cached_property
    def hpo_names(self) -> dict[str, str]:
        df = self._table("hpo_terms")
        return dict(zip(df["id"], df["name"]))

    @cached_property
    def gene_phenotypes(self) -> pd.DataFrame:
        return self._table("gene_phenotypes")

    @cached_property
    def perturb_train(self) -> pd.DataFrame:
        df = self._table("perturbqa")
        return df[df["split"] == "train"]


# --- cells --------------------------------------------------------------------------------------

def cell_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    """Markers of each candidate type present in the sentence with their ranks; for the
    explanation variant (gene_set) every marker of the named type, in sentence order."""
    genes = [g.strip() for g in tagged(problem["prompt"], "cell").split(",") if g.strip()]
    rank = {g: i + 1 for i, g in reversed(list(enumerate(genes)))}
    explain = problem["answer_type"] == "gene_set"
    candidates = [evidence["cell_type"]] if explain else (problem["choices"] or sorted(kb.markers))
    facts = []
    for cand in candidates:
        present = sorted((rank[g], g) for g in kb.markers.get(cand, []) if g in rank)
        facts += [{"form": "marker", "gene": g, "candidate": cand, "rank": r}
                  for r, g in (present if explain else present[:5])]
        if not present:
            facts.append({"form": "no_marker", "candidate": cand})
    return facts, {"n": len(genes)}


# --- DNA motifs ---------------------------------------------------------------------------------

def _log_odds(pfm) -> np.ndarray:
    freq = np.asarray([list(row) for row in pfm], dtype=float)
    return np.log2((freq * 100 + 0.25) / (100 + 1.0) / 0.25)  # 100 pseudo-sites, 1 pseudocount


def best_site(sequence: str, pfm) -> tuple[float, int, float]:
    """(best log-odds score on either strand, 1-based start on the forward strand, threshold)."""
    lo = _log_odds(pfm)
    width = lo.shape[0]
    index = {"A": 0, "C": 1, "G": 2, "T": 3}
    lo_n = np.hstack([lo, np.zeros((width, 1))])  # N scores 0
    best, where = -math.inf, 0
    for strand in (sequence, sequence.translate(COMPLEMENT)[::-1]):
        codes = np.asarray([index.get(b, 4) for b in strand])
        if len(codes) < width:
            continue
        windows = np.lib.stride_tricks.sliding_window_view(codes, width)
        scores = lo_n[np.arange(width), windows].sum(axis=1)
        i = int(scores.argmax())
        if scores[i] > best:
            best = float(scores[i])
            where = i + 1 if strand is sequence else len(sequence) - i - width + 1
    low, high = lo.min(axis=1).sum(), lo.max(axis=1).sum()
    return best, where, float(low + RELATIVE_THRESHOLD * (high - low))


def _motif_ids(problem: dict, evidence: dict, kb: Knowledge) -> list[tuple[str, str]]:
    """(candidate as the problem names it, motif id): the evidence's ids where it names them
    (a TF can have several JASPAR motifs), else the TF's first motif in the corpus."""
    named = {evidence.get("tf_name"): evidence.get("motif_id")}
    named |= {d["tf_name"]: d["motif_id"] for d in evidence.get("distractors", [])}
    by_tf: dict[str, str] = {}
    for mid, name in kb.motifs["tf_name"].items():
        by_tf.setdefault(name.casefold(), mid)
    out = []
    for name in problem["choices"] or [evidence.get("tf_name") or evidence.get("motif_id") or ""]:
        mid = named.get(name) or (name if name in kb.motifs.index else by_tf.get(str(name).casefold()))
        if mid is not None and mid in kb.motifs.index:
            out.append((name, mid))
    return out


def motif_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    dna = tagged(problem["prompt"], "dna").upper()
    facts = []
    for cand, mid in _motif_ids(problem, evidence, kb):
        score, pos, threshold = best_site(dna, kb.motifs.loc[mid, "pfm"])
        facts.append({"form": "motif", "candidate": cand, "motif": mid, "score": round(score, 2),
                      "position": pos, "threshold": round(threshold, 2)})
    return facts, {"n": len(dna)}


# --- proteins -----------------------------------------------------------------------------------

def hmm_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    import pyhmmer

    seq = tagged(problem["prompt"], "protein").upper()
    names = problem["choices"] or ([evidence["family"]] if evidence.get("family") else sorted(kb.hmms))
    alphabet = pyhmmer.easel.Alphabet.amino()
    digital = pyhmmer.easel.TextSequence(name=b"query", sequence=seq).digitize(alphabet)
    block = pyhmmer.easel.DigitalSequenceBlock(alphabet, [digital])
    facts = []
    for name in names:
        hmm = kb.hmms.get(name)
        if hmm is None:
            continue
        hits = pyhmmer.plan7.Pipeline(alphabet).search_hmm(hmm, block)
        if len(hits):
            facts.append({"form": "hmm", "candidate": name, "bits": round(hits[0].score, 1),
                          "evalue": float(f"{hits[0].evalue:.1e}")})
        else:
            facts.append({"form": "no_hmm", "candidate": name})
    return facts, {"n": len(seq)}


# --- phenotypes (rare disease, causal gene) -----------------------------------------------------

def patient_phenotypes(prompt: str, kb: Knowledge) -> list[str]:
    """HPO ids in the prompt; else the lines/items of the prompt that are HPO term names."""
    ids = list(dict.fromkeys(_HPO_ID.findall(prompt)))
    if ids:
        return ids
    by_name = {name.casefold(): hid for hid, name in kb.hpo_names.items()}
    items = [re.sub(r"^[\s\-*\d.)]+", "", part).strip().casefold() for part in re.split(r"[,;\n]", prompt)]
    return list(dict.fromkeys(by_name[i] for i in items if i in by_name))


def _information_content(table: pd.DataFrame, entity: str) -> dict[str, float]:
    n = table[entity].nunique()
    per_term = table.groupby("hpo_id")[entity].nunique()
    return {hid: math.log(n / c) for hid, c in per_term.items()}


def disease_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    """Each candidate disease (choices read as ``Name (OMIM:123)``) with the patient's phenotypes
    it is annotated with, weighted by information content; open questions rank every disease.
    Options too long to copy (``tasks.common.answers.by_letter``) are named by their letter, as the
    answer names them."""
    table = kb.disease_phenotypes
    patient = patient_phenotypes(problem["prompt"], kb)
    ic = _information_content(table, "disease_id")
    shared = table[table["hpo_id"].isin(patient)]
    if problem["choices"]:
        letters = by_letter(problem["answer_type"], problem["choices"])
        candidates = [(f"option {LETTERS[i]}" if letters else c,
                       m.group(1) if (m := _DISEASE_ID.search(c)) else None)
                      for i, c in enumerate(problem["choices"])]
    else:  # open diagnosis: the best-matching annotated diseases
        score = shared.assign(ic=shared["hpo_id"].map(ic)).groupby("disease_id")["ic"].sum()
        top = score.sort_values(ascending=False, kind="stable").head(4).index
        names = table.drop_duplicates("disease_id").set_index("disease_id")["disease_name"]
        candidates = [(f"{names[d]} ({d})", d) for d in top]
    facts = []
    for name, did in candidates:
        terms = sorted(set(shared.loc[shared["disease_id"] == did, "hpo_id"]), key=lambda h: (-ic[h], h))[:6]
        facts += [{"form": "disease_phenotype", "phenotype": kb.hpo_names.get(h, h), "ic": round(ic[h], 2),
                   "candidate": name} for h in terms]
        if not terms:
            facts.append({"form": "no_disease_phenotype", "candidate": name})
    return facts, {"n": len(patient)}


def gene_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    table = kb.gene_phenotypes
    patient = patient_phenotypes(problem["prompt"], kb)
    ic = _information_content(table, "gene_symbol")
    shared = table[table["hpo_id"].isin(patient)]
    facts = []
    for gene in problem["choices"]:
        terms = sorted(set(shared.loc[shared["gene_symbol"] == gene, "hpo_id"]), key=lambda h: (-ic[h], h))[:6]
        facts += [{"form": "gene_phenotype", "candidate": gene, "phenotype": kb.hpo_names.get(h, h),
                   "ic": round(ic[h], 2)} for h in terms]
        if not terms:
            facts.append({"form": "no_gene_phenotype", "candidate": gene})
    return facts, {"n": len(patient)}


# --- perturbations ------------------------------------------------------------------------------

OUTCOMES = {"de": ("differentially expressed", "not differentially expressed"),
            "dir": ("up-regulated", "down-regulated")}


def perturb_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    """The knockdown's neighbours in the training data (genes the knockdown changes that were
    themselves knocked down) and what each did to the queried gene; the gene's training response
    rate decides only when the neighbours' votes tie."""
    task = evidence.get("task") or ("dir" if problem["family"].endswith("dir") else "de")
    pert, gene = evidence.get("pert"), evidence.get("gene")
    if not (pert and gene):
        raise ValueError("evidence lacks pert or gene")
    yes, no = OUTCOMES[task]
    facts = [{"form": "neighbour", "pert": pert, "neighbour": nb["pert"], "gene": gene,
              "outcome": yes if int(nb["label"]) == 1 else no} for nb in evidence.get("neighbours", [])]
    rate, n = evidence.get("gene_train_rate"), int(evidence.get("gene_train_pairs") or 0)
    if rate is not None and n:
        facts.append({"form": "gene_rate", "gene": gene, "rate": round(100 * float(rate)), "n": n,
                      "outcome": yes})
    return facts, {"n": len(facts), "pert": pert, "gene": gene}


# --- DNA to protein -----------------------------------------------------------------------------

def translation_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    """The DNA translated in six frames with the problem's codon table; each candidate protein's
    best position-by-position identity to one of them."""
    from Bio.Seq import Seq

    dna = tagged(problem["prompt"], "dna").upper()
    table = int(evidence.get("codon_table") or 1)
    frames = {}
    for strand, seq in (("+", dna), ("-", dna.translate(COMPLEMENT)[::-1])):
        for offset in range(3):
            part = seq[offset:]
            frames[f"{strand}{offset + 1}"] = str(Seq(part[: len(part) // 3 * 3]).translate(table=table))
    facts = []
    for i, choice in enumerate(problem["choices"]):
        target = _TAG["protein"].search(choice)
        target = (target.group(1) if target else choice).strip().upper()
        identity, frame = max((sum(a == b for a, b in zip(p, target)) / max(len(target), 1), f)
                              for f, p in sorted(frames.items(), reverse=True))
        facts.append({"form": "translation", "frame": frame, "identity": round(100 * identity),
                      "candidate": f"option {LETTERS[i]}"})
    return facts, {"n": len(dna), "table": table}


# --- cell + DNA integration ---------------------------------------------------------------------

def tf_expression_facts(problem: dict, evidence: dict, kb: Knowledge) -> tuple[list[dict], dict]:
    """Which factor's motif the DNA holds (its best site against the threshold), then whether that
    factor's gene is in the cell sentence: both must hold for a yes."""
    tf, mid = evidence.get("tf_name"), evidence.get("motif_id")
    if not (tf and mid in kb.motifs.index):
        raise ValueError("evidence lacks a known motif_id and tf_name")
    dna = tagged(problem["prompt"], "dna").upper()
    genes = [g.strip() for g in tagged(problem["prompt"], "cell").split(",") if g.strip()]
    score, pos, threshold = best_site(dna, kb.motifs.loc[mid, "pfm"])
    facts = [{"form": "motif", "candidate": tf, "motif": mid, "score": round(score, 2), "position": pos,
              "threshold": round(threshold, 2)}]
    if tf in genes:
        facts.append({"form": "expressed", "candidate": tf, "rank": genes.index(tf) + 1})
    else:
        facts.append({"form": "not_expressed", "candidate": tf})
    return facts, {"n": len(dna), "genes": len(genes)}
