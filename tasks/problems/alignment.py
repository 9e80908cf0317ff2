"""Family ``dna_to_protein``: which protein does this bacterial coding sequence encode?

Genes are predicted with pyrodigal (metagenomic mode, no training; genes called with
another codon table's model, e.g. table 4 for Mycoplasma, are skipped and counted) in the genomes that ship in the
pyrodigal/pyhmmer wheels; only complete genes (both ends inside the contig) without ambiguous
bases are used, and Biopython's translation with the bacterial codon table (11, with alternative
start codons read as Met) must equal pyrodigal's protein. Distractors are proteins of other
genes of similar length (within ``length_tolerance``), so length alone does not give the answer:
they are the answer's near neighbours in length, with its length rank among the options dealt
uniformly (``choices.draw_by_rank``). Drawn at random from a band around the answer's length, the
answer was the shortest or the longest option in 13 of 71 test problems (chance: 36), and a model
scoring options by their likelihood (which favours short strings) picked against it.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pyrodigal
from Bio import SeqIO
from Bio.Data.CodonTable import TranslationError
from Bio.Seq import Seq

from tasks.problems.choices import PositionDealer, UsageBalancer, arrange, draw_by_rank, same_split
from tasks.problems.records import lettered, problem

QUESTION = ("Which protein does this bacterial coding sequence encode "
            "(genetic code: NCBI translation table {table})?")


def resolve(spec: str) -> Path:
    """``pkg:relpath`` (data shipped inside an installed package) or a plain path."""
    if ":" in spec and not Path(spec).exists():
        package, rel = spec.split(":", 1)
        module = __import__(package)
        return Path(module.__file__).resolve().parent / rel
    return Path(spec)


def _records(path: Path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as fh:
        yield from SeqIO.parse(fh, "fasta")


def find_genes(genomes: list[str], table: int, min_nt: int, max_nt: int) -> tuple[pd.DataFrame, dict]:
    """Complete genes with ``min_nt <= length <= max_nt`` and a verified translation."""
    finder = pyrodigal.GeneFinder(meta=True)
    rows, stats = [], {"genes_predicted": 0, "partial_skipped": 0, "length_skipped": 0,
                       "ambiguous_skipped": 0, "translation_mismatch": 0,
             "other_codon_table_skipped": 0}
    for spec in genomes:
        path = resolve(spec)
        if not path.exists():
            raise FileNotFoundError(f"{spec}: genome file not found")
        for record in _records(path):
            sequence = str(record.seq).upper()
            for gene in finder.find_genes(sequence.encode()):
                stats["genes_predicted"] += 1
                if gene.translation_table != table:  # meta mode may pick e.g. a table-4 model
                    stats["other_codon_table_skipped"] += 1
                    continue
                if gene.partial_begin or gene.partial_end:
                    stats["partial_skipped"] += 1
                    continue
                nt = gene.sequence().upper()
                if not min_nt <= len(nt) <= max_nt:
                    stats["length_skipped"] += 1
                    continue
                if set(nt) - set("ACGT"):
                    stats["ambiguous_skipped"] += 1
                    continue
                protein = gene.translate(translation_table=table).rstrip("*")
                try:
                    translated = str(Seq(nt).translate(table=table, cds=True))
                except TranslationError:
                    translated = None
                if translated != protein:
                    stats["translation_mismatch"] += 1
                    continue
                rows.append({"gene_id": f"{record.id}:{gene.begin}-{gene.end}:{'+' if gene.strand > 0 else '-'}",
                             "genome": path.name, "record": record.id, "begin": gene.begin,
                             "end": gene.end, "strand": "+" if gene.strand > 0 else "-",
                             "start_codon": nt[:3], "stop_codon": nt[-3:], "cds": nt,
                             "protein": protein})
    genes = pd.DataFrame(rows)
    if len(genes):
        genes = genes.drop_duplicates("protein").reset_index(drop=True)
    return genes, stats


def dna_to_protein_problems(genes: pd.DataFrame, split_of: dict[str, str], n_genes: int, table: int,
                            tolerance: float, n_choices: int,
                            rng: np.random.Generator) -> tuple[list[dict], dict]:
    """Rows of ``dna_to_protein``; the gene is the split entity, distractors other genes of its
    split (``choices.same_split``) whose proteins are about as long."""
    chosen = genes.iloc[np.sort(rng.permutation(len(genes))[:n_genes])].reset_index(drop=True)
    lengths = chosen["protein"].str.len().to_numpy()
    split = np.array([split_of[f"cds:{g}"] for g in chosen["gene_id"]])
    deal, deal_rank, balancer = PositionDealer(n_choices, rng), PositionDealer(n_choices, rng), UsageBalancer()
    rows, stats = [], {"no_length_matched_distractors": 0, "length_rank_moved": 0}
    for i, gene in chosen.iterrows():
        near = np.flatnonzero(np.abs(lengths - lengths[i]) <= tolerance * lengths[i])
        near = np.array(same_split(near[near != i], split.__getitem__, split[i]), dtype=int)
        if len(near) < n_choices - 1:
            stats["no_length_matched_distractors"] += 1
            continue
        rank = deal_rank()
        picked, used = draw_by_rank(near.tolist(), lengths[near], lengths[i], n_choices - 1, rank, rng,
                                    balancer.weights(near), width=6)
        stats["length_rank_moved"] += int(used != rank)
        balancer.record(picked)
        tagged = [f"<protein>{chosen.at[j, 'protein']}</protein>" for j in picked]
        answer = f"<protein>{gene['protein']}</protein>"
        options = arrange(answer, tagged, deal())
        entity = f"cds:{gene['gene_id']}"
        rows.append(problem(
            family="dna_to_protein", category="multiomics_alignment", task_kind="annotation",
            modality="dna+protein",
            prompt=f"{QUESTION.format(table=table)}\n<dna>{gene['cds']}</dna>\n{lettered(options)}",
            answer=answer, answer_type="multiple_choice", split=split_of[entity], entity=entity,
            source_ids=[gene["gene_id"]], choices=options, key="cds",
            evidence={"codon_table": table, "genome": gene["genome"], "record": gene["record"],
                      "begin": int(gene["begin"]), "end": int(gene["end"]), "strand": gene["strand"],
                      "start_codon": gene["start_codon"], "stop_codon": gene["stop_codon"],
                      "cds_length": len(gene["cds"]), "protein_length": len(gene["protein"]),
                      "distractor_genes": [chosen.at[j, "gene_id"] for j in picked]}))
    return rows, stats
