"""Family ``protein_family``: a protein sequence -> which of the shipped profile HMM families.

HMMER (pyhmmer ``hmmsearch``) labels every candidate: a sequence is a member of a family when
exactly one family's HMM hits it with E-value <= ``max_evalue``; sequences hitting several families
are filtered (counted). The shipped FASTA files give real members for only a few families (measured
on the embedded data: 2-Hacid_dh_C, KR, LuxC, Thioesterase and one RRE family), so each family is
topped up to ``per_family`` members with sequences emitted from its own HMM (``HMM.emit_sequence``),
which pass the same HMMER check; ``evidence.origin`` says ``real`` or ``hmm_emitted``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyhmmer

from tasks.problems.choices import PositionDealer, arrange, draw_distractors
from tasks.problems.records import lettered, problem

QUESTION = "Which protein family does this protein belong to?"
AMINO = pyhmmer.easel.Alphabet.amino()


def load_hmms(families: pd.DataFrame, hmm_dir: Path) -> list[pyhmmer.plan7.HMM]:
    """The HMMs named in the corpus table ``protein_families`` (one file may hold several)."""
    wanted, hmms = set(families["name"]), {}
    for file in sorted(set(families["hmm_file"])):
        with pyhmmer.plan7.HMMFile(hmm_dir / file) as fh:
            for hmm in fh:
                name = hmm.name.decode() if isinstance(hmm.name, bytes) else hmm.name
                if name in wanted and name not in hmms:
                    hmms[name] = hmm
    missing = wanted - set(hmms)
    if missing:
        raise ValueError(f"protein families without an HMM in {hmm_dir}: {sorted(missing)}")
    return [hmms[n] for n in sorted(hmms)]


def family_hits(hmms: list, ids: list[str], sequences: list[str],
                max_evalue: float) -> dict[str, dict[str, dict]]:
    """``{sequence id: {family: {"score", "evalue"}}}`` for hits with E-value <= ``max_evalue``."""
    block = pyhmmer.easel.DigitalSequenceBlock(AMINO, [
        pyhmmer.easel.TextSequence(name=i.encode(), sequence=s).digitize(AMINO)
        for i, s in zip(ids, sequences)])
    out: dict[str, dict[str, dict]] = {i: {} for i in ids}
    for top in pyhmmer.hmmsearch(hmms, block, cpus=1):
        family = top.query.name.decode() if isinstance(top.query.name, bytes) else top.query.name
        for hit in top:
            name = hit.name.decode() if isinstance(hit.name, bytes) else hit.name
            if hit.evalue <= max_evalue:
                out[name][family] = {"score": round(float(hit.score), 1), "evalue": float(hit.evalue)}
    return out


def family_members(proteins: pd.DataFrame, hmms: list, per_family: int, max_length: int,
                   max_evalue: float, emit: bool, seed: int,
                   rng: np.random.Generator) -> tuple[pd.DataFrame, dict]:
    """Up to ``per_family`` HMMER-confirmed members per family: real first, then emitted."""
    real = proteins[proteins["length"] <= max_length]
    hits = family_hits(hmms, list(real["protein_id"]), list(real["sequence"]), max_evalue)
    stats = {"real_multi_family_filtered": sum(len(h) > 1 for h in hits.values()),
             "real_too_long_skipped": int(len(proteins) - len(real)),
             "emitted_rejected": 0, "real_per_family": {}, "emitted_per_family": {}}
    members = []
    seq_of = dict(zip(real["protein_id"], real["sequence"]))
    for hmm in hmms:
        family = hmm.name.decode() if isinstance(hmm.name, bytes) else hmm.name
        own = sorted(i for i, h in hits.items() if set(h) == {family})
        own = [own[k] for k in rng.permutation(len(own))[:per_family]]
        members += [{"protein_id": i, "family": family, "sequence": seq_of[i], "origin": "real",
                     "hits": hits[i]} for i in own]
        stats["real_per_family"][family] = len(own)
        need, n_emitted, attempts = per_family - len(own), 0, 0
        randomness = pyhmmer.easel.Randomness(seed + 1 + hmms.index(hmm))
        while emit and need > 0 and attempts < 4 * per_family:
            batch = [hmm.emit_sequence(randomness) for _ in range(need)]
            ids = [f"{family}|hmm_emitted|{attempts + k}" for k in range(need)]
            seqs = [AMINO.decode(s.sequence) for s in batch]
            attempts += need
            checked = family_hits(hmms, ids, seqs, max_evalue)
            for i, s in zip(ids, seqs):
                if set(checked[i]) == {family} and need > 0:
                    members.append({"protein_id": i, "family": family, "sequence": s,
                                    "origin": "hmm_emitted", "hits": checked[i]})
                    need -= 1
                    n_emitted += 1
                else:
                    stats["emitted_rejected"] += 1
        stats["emitted_per_family"][family] = n_emitted
    return pd.DataFrame(members), stats


def protein_family_problems(members: pd.DataFrame, families: pd.DataFrame, split_of: dict[str, str],
                            n_choices: int, rng: np.random.Generator) -> list[dict]:
    """Rows of ``protein_family``: one per member; distractors are other shipped families."""
    names = sorted(families["name"])
    description = dict(zip(families["name"], families["description"]))
    deal = PositionDealer(n_choices, rng)
    rows = []
    for m in members.itertuples(index=False):
        distractors = draw_distractors(m.family, names, n_choices - 1, rng)
        if distractors is None:
            raise ValueError(f"protein_family: fewer than {n_choices} families to choose from")
        options = arrange(m.family, distractors, deal())
        entity = f"protein:{m.protein_id}"
        rows.append(problem(
            family="protein_family", category="protein", task_kind="annotation", modality="protein",
            prompt=f"{QUESTION}\n<protein>{m.sequence}</protein>\n{lettered(options)}",
            answer=m.family, answer_type="multiple_choice", split=split_of[entity], entity=entity,
            source_ids=[m.protein_id], choices=options, key="family",
            evidence={"family": m.family, "family_description": description.get(m.family, ""),
                      "origin": m.origin, "length": len(m.sequence), "hmmer_hits": m.hits,
                      "choices_without_hit": [o for o in options if o not in m.hits]}))
    return rows
