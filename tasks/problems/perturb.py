"""Families ``perturb_de`` and ``perturb_dir``: PerturbQA pairs in the benchmark's own wording.

Every (cell line, task) in the corpus table ``perturbqa`` becomes problems, so adding a CSV and
its stem in ``corpus.perturbqa_files`` is all a new cell line needs. PerturbQA's split is kept.
Train pairs are sampled label-balanced; test pairs are sampled gene by gene, each sampled
downstream gene with both labels, because the benchmark's AUROC is computed per gene.

The knockdown's training neighbours give the evidence and the non-LLM baseline: the neighbours of
a knockdown ``p`` are the training knockdowns ``q`` that made ``p`` itself differentially
expressed (same pathway, upstream of ``p``); a pair ``(p, g)`` is scored by how often ``g``
responded (``de``) or went up (``dir``) under those neighbours.

>>> target_phrase("10-unfolded protein response")
"the gene program 'unfolded protein response' (cluster 10)"
>>> target_phrase("TP53")
'TP53'
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from tasks.problems.records import problem

LINE_NAMES = {"k562": "K562", "k562_set": "K562", "rpe1": "RPE1", "hepg2": "HepG2"}
_CLUSTER = re.compile(r"^(\d+)-(.+)$")
MAX_NEIGHBOURS_IN_EVIDENCE = 8


def target_phrase(gene: str) -> str:
    """k562_set rows name gene clusters ``<n>-<programme>``; others name one gene."""
    match = _CLUSTER.match(gene)
    return f"the gene program '{match.group(2)}' (cluster {match.group(1)})" if match else gene


def prompt_for(task: str, cell_line: str, pert: str, gene: str) -> str:
    line = LINE_NAMES.get(cell_line, cell_line)
    target = target_phrase(gene)
    if task == "de":
        return (f"In {line} cells, a CRISPRi knockdown of {pert} was performed. Is {target} "
                f"differentially expressed after the knockdown?")
    return (f"In {line} cells, a CRISPRi knockdown of {pert} was performed, and {target} is "
            f"differentially expressed as a result. Is {target} up- or down-regulated?")


def sample_train(pairs: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Up to ``n`` training pairs, half of each label where the data allow it."""
    half = n // 2
    by_label = {lab: g.iloc[rng.permutation(len(g))] for lab, g in pairs.groupby("label")}
    take = {lab: min(len(g), half) for lab, g in by_label.items()}
    spare = n - sum(take.values())
    for lab, g in by_label.items():  # one label short: fill from the other
        extra = min(spare, len(g) - take[lab])
        take[lab] += extra
        spare -= extra
    return pd.concat([g.head(take[lab]) for lab, g in by_label.items()])


def sample_test(pairs: pd.DataFrame, n_genes: int, per_gene: int,
                rng: np.random.Generator) -> pd.DataFrame:
    """Test pairs of up to ``n_genes`` downstream genes that have both labels, balanced per gene."""
    both = pairs.groupby("gene")["label"].nunique()
    genes = np.array(sorted(both[both == 2].index))
    genes = genes[rng.permutation(len(genes))[:n_genes]]
    picked = []
    for gene in sorted(genes):
        rows = pairs[pairs["gene"] == gene]
        for _, g in rows.groupby("label"):
            picked.append(g.iloc[rng.permutation(len(g))[:max(per_gene // 2, 1)]])
    return pd.concat(picked) if picked else pairs.head(0)


def neighbour_scores(de_train: pd.DataFrame, task_train: pd.DataFrame,
                     targets: pd.DataFrame) -> pd.DataFrame:
    """Score ``targets`` (pert, gene) by the mean training label of ``gene`` under the neighbours.

    Returns ``targets`` with ``score``, ``gene_rate`` (training rate of the gene, the fallback
    when a knockdown has no neighbour with a label on that gene) and ``n_neighbours``.
    """
    neighbours = (de_train.loc[de_train["label"] == 1, ["pert", "gene"]]
                  .rename(columns={"pert": "neighbour", "gene": "pert"}))
    labelled = task_train[["pert", "gene", "label"]].rename(columns={"pert": "neighbour",
                                                                     "label": "nb_label"})
    keyed = targets[["pert", "gene"]].drop_duplicates()
    joined = (keyed.merge(neighbours, on="pert")
              .merge(labelled, on=["neighbour", "gene"]))
    joined = joined[joined["neighbour"] != joined["pert"]]
    nb = joined.groupby(["pert", "gene"])["nb_label"].agg(nb_mean="mean", n_neighbours="size")
    gene_rate = task_train.groupby("gene")["label"].mean().rename("gene_rate")
    out = targets.merge(nb.reset_index(), on=["pert", "gene"], how="left").merge(
        gene_rate.reset_index(), on="gene", how="left")
    out["gene_rate"] = out["gene_rate"].fillna(task_train["label"].mean())
    out["n_neighbours"] = out["n_neighbours"].fillna(0).astype(int)
    out["score"] = out["nb_mean"].fillna(out["gene_rate"])
    return out.drop(columns="nb_mean")


def _neighbour_evidence(pairs: pd.DataFrame, de_train: pd.DataFrame,
                        task_train: pd.DataFrame) -> dict[tuple[str, str], list[dict]]:
    ups = de_train.loc[de_train["label"] == 1, ["pert", "gene"]]
    nbrs = ups[ups["gene"].isin(set(pairs["pert"]))].rename(columns={"pert": "neighbour",
                                                                     "gene": "pert"})
    joined = (pairs[["pert", "gene"]].merge(nbrs, on="pert")
              .merge(task_train.rename(columns={"pert": "neighbour"})[["neighbour", "gene", "label"]],
                     on=["neighbour", "gene"]))
    joined = joined[joined["neighbour"] != joined["pert"]].sort_values(["pert", "gene", "neighbour"])
    out: dict[tuple[str, str], list[dict]] = {}
    for (p, g), grp in joined.groupby(["pert", "gene"]):
        out[(p, g)] = [{"pert": q, "label": int(lab)} for q, lab in
                       zip(grp["neighbour"].head(MAX_NEIGHBOURS_IN_EVIDENCE),
                           grp["label"].head(MAX_NEIGHBOURS_IN_EVIDENCE))]
    return out


def perturb_problems(pairs: pd.DataFrame, train_per_line: int, test_genes: int, per_gene: int,
                     rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Rows of ``perturb_de``/``perturb_dir`` for every (cell line, task) in ``pairs``."""
    rows, sampled_counts = [], {}
    for (line, task), table in pairs.groupby(["cell_line", "task"], sort=True):
        train, test = table[table["split"] == "train"], table[table["split"] == "test"]
        de = pairs[(pairs["cell_line"] == line) & (pairs["task"] == "de") & (pairs["split"] == "train")]
        sampled = pd.concat([sample_train(train, train_per_line, rng),
                             sample_test(test, test_genes, per_gene, rng)])
        sampled_counts[f"{line}-{task}"] = len(sampled)
        scored = neighbour_scores(de, train, sampled)
        evidence_nb = _neighbour_evidence(sampled, de, train)
        gene_stats = train.groupby("gene")["label"].agg(["sum", "size"])
        for r in scored.itertuples(index=False):
            s, n = gene_stats.loc[r.gene] if r.gene in gene_stats.index else (0, 0)
            if r.split == "train":  # the pair's own label never counts as its own evidence
                s, n = s - r.label, n - 1
            yes, no = ("yes", "no") if task == "de" else ("up", "down")
            entity = f"perturbation:{line}:{r.pert}"
            rows.append(problem(
                family=f"perturb_{task}", category="cell", task_kind="annotation",
                modality="perturbation", prompt=prompt_for(task, line, r.pert, r.gene),
                answer=yes if r.label == 1 else no,
                answer_type="yes_no" if task == "de" else "label", split=r.split, entity=entity,
                source_ids=[line, r.pert, r.gene], key=r.gene,
                evidence={"cell_line": line, "pert": r.pert, "gene": r.gene, "task": task,
                          "label": int(r.label),
                          "gene_train_rate": (float(s) / n) if n else None, "gene_train_pairs": int(n),
                          "neighbours": evidence_nb.get((r.pert, r.gene), []),
                          "neighbour_score": float(r.score), "n_neighbours": int(r.n_neighbours)}))
    return rows, sampled_counts
