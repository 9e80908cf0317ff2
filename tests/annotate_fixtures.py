"""Small, schema-valid inputs of the annotate stage: a corpus's knowledge tables and problems in the
problems stage's format (evidence keys as that stage writes them), some of them built so that the
evidence contradicts the label, so verification has something to reject."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common import schemas

MARKERS = {"B cell": ["CD79A", "MS4A1", "CD79B", "CD19"],
           "T cell": ["CD3D", "CD3E", "IL7R", "LTB"],
           "Monocyte": ["CD14", "LYZ", "S100A8", "FCN1"]}
FILLER = [f"GENE{i}" for i in range(40)]
SITES = {"MA9991.1": ("GATA1", "AGATAAGG"), "MA9992.1": ("SPI1", "CGGAAGTC")}


def _pfm(site: str) -> list[list[float]]:
    return [[0.91 if b == base else 0.03 for base in "ACGT"] for b in site]


def write_corpus(folder: Path) -> Path:
    from tasks.corpus.knowledge import protein_families

    folder.mkdir(parents=True, exist_ok=True)
    markers = pd.DataFrame([{"cell_type": t, "gene": g, "rank": i + 1, "score": 10.0 - i,
                             "logfoldchange": 2.0} for t, genes in MARKERS.items() for i, g in enumerate(genes)])
    markers.to_parquet(folder / "markers.parquet")
    motifs = pd.DataFrame([{"motif_id": mid, "tf_name": tf, "tf_class": "c", "tf_family": "f",
                            "length": len(site), "pfm": _pfm(site), "counts_consistent": True}
                           for mid, (tf, site) in SITES.items()])
    motifs.to_parquet(folder / "motifs.parquet")
    protein_families().to_parquet(folder / "protein_families.parquet")
    hpo = pd.DataFrame({"id": [f"HP:000000{i}" for i in range(1, 8)],
                        "name": ["Seizure", "Ataxia", "Short stature", "Deafness", "Cataract", "Fever", "Rash"]})
    hpo.to_parquet(folder / "hpo_terms.parquet")
    disease = [("OMIM:100001", "Alpha syndrome", [1, 2, 3]), ("OMIM:100002", "Beta syndrome", [4, 5]),
               ("OMIM:100003", "Gamma disease", [1, 6]), ("OMIM:100004", "Delta disease", [6, 7])]
    pd.DataFrame([{"disease_id": d, "source": "OMIM", "disease_name": n, "hpo_id": f"HP:000000{t}"}
                  for d, n, ts in disease for t in ts]).to_parquet(folder / "disease_phenotypes.parquet")
    genes = [("GENEA", [1, 2, 3]), ("GENEB", [4, 5]), ("GENEC", [6]), ("GENED", [6, 7])]
    pd.DataFrame([{"gene_symbol": g, "gene_id": i, "hpo_id": f"HP:000000{t}"}
                  for i, (g, ts) in enumerate(genes) for t in ts]).to_parquet(folder / "gene_phenotypes.parquet")
    docs = pd.DataFrame({"doc_id": ["d1", "d2", "d3"], "source": ["markers"] * 3,
                         "title": ["B cell", "T cell", "GATA1"],
                         "text": ["B cells express CD79A and MS4A1.", "T cells express CD3D and CD3E.",
                                  "GATA1 binds AGATAA sites in erythroid enhancers."],
                         "n_words": [6, 6, 7]})
    docs.to_parquet(folder / "documents.parquet")
    return folder


def _row(pid: str, family: str, category: str, prompt: str, answer: str, answer_type: str,
         evidence: dict, choices: list[str] | None = None, split: str = "train") -> dict:
    return {"id": pid, "family": family, "category": category, "task_kind": "annotation",
            "modality": category, "prompt": prompt, "answer": answer, "answer_type": answer_type,
            "choices": list(choices or []), "evidence": json.dumps(evidence, sort_keys=True),
            "split": split, "source_ids": [pid], "entity": f"entity:{pid}"}


def _lettered(choices: list[str]) -> str:
    return "\n".join(f"{'ABCDEFGHIJ'[i]}. {c}" for i, c in enumerate(choices))


def cell_problem(pid: str, top: list[str], label: str, kind: str = "multiple_choice", split: str = "train") -> dict:
    genes = top + [g for g in FILLER if g not in top]
    sentence = "<cell>" + ", ".join(genes) + "</cell>"
    intro = "Here is a cell sentence: the genes of one cell, most highly expressed first.\n"
    present = [{"gene": g, "sentence_rank": genes.index(g) + 1, "marker_rank": MARKERS[label].index(g) + 1}
               for g in MARKERS[label] if g in genes]
    evidence = {"cell_type": label, "n_genes_in_sentence": len(genes), "markers_present": present}
    if kind == "multiple_choice":
        choices = sorted(MARKERS)
        return _row(pid, "cell_type", "cell", f"{intro}{sentence}\nWhich cell type is this cell?\n"
                    f"{_lettered(choices)}", label, kind, evidence, choices, split)
    if kind == "label":
        return _row(pid, "cell_type", "cell", f"{intro}{sentence}\nWhat is the cell type of this cell?",
                    label, kind, evidence, split=split)
    answer = ", ".join(m["gene"] for m in sorted(present, key=lambda m: m["sentence_rank"]))
    return _row(pid, "cell_type", "cell", f"{intro}{sentence}\nThis cell is a {label} cell. Which genes "
                "in its sentence are marker genes of that cell type?", answer, kind, evidence, split=split)


def tf_problem(pid: str, planted: str, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    background = "".join(rng.choice(list("ACGT"), 60))
    tf, site = SITES[planted]
    sequence = background[:20] + site + background[20 + len(site):]
    other = next(m for m in SITES if m != planted)
    choices = sorted([tf, SITES[other][0]])
    evidence = {"motif_id": planted, "tf_name": tf, "site_position": 20, "site_strand": "+",
                "distractors": [{"tf_name": SITES[other][0], "motif_id": other}]}
    return _row(pid, "tf_binding", "dna", f"Which transcription factor binds this sequence?\n"
                f"<dna>{sequence}</dna>\n{_lettered(choices)}", tf, "multiple_choice", evidence, choices)


def perturb_problem(pid: str, labels: list[int], answer: str, task: str = "de") -> dict:
    evidence = {"cell_line": "k562", "pert": "PERTX", "gene": "GENEY", "task": task,
                "label": int(answer in ("yes", "up")), "gene_train_rate": 0.2, "gene_train_pairs": 10,
                "neighbours": [{"pert": f"NB{i}", "label": lab} for i, lab in enumerate(labels)]}
    if task == "de":
        return _row(pid, "perturb_de", "cell", "In k562 cells, does knocking down PERTX change the "
                    "expression of GENEY?", answer, "yes_no", evidence)
    return _row(pid, "perturb_dir", "cell", "In k562 cells, knocking down PERTX changes GENEY. Is GENEY "
                "up- or down-regulated?", answer, "label", evidence)


def clinical_problem(pid: str, family: str, terms: list[int], answer: str, choices: list[str]) -> dict:
    names = ["Seizure", "Ataxia", "Short stature", "Deafness", "Cataract", "Fever", "Rash"]
    listed = "\n".join(f"- {names[t - 1]} (HP:000000{t})" for t in terms)
    question = "Which disease is the most likely diagnosis?" if family == "rare_disease" else \
        "Which gene most likely carries the causal variant?"
    return _row(pid, family, "clinical", f"A patient presents with the following phenotypes (HPO terms):\n"
                f"{listed}\n{question}\n{_lettered(choices)}", answer, "multiple_choice",
                {"shared_with_annotations": [{"hpo_id": f"HP:000000{t}"} for t in terms]}, choices)


def translation_problem(pid: str) -> dict:
    from Bio.Seq import Seq

    cds = "ATGGCTAAAGGTGAACTGCGTTCCTGGATGCATTAA"
    protein = str(Seq(cds).translate(table=11)).rstrip("*")
    choices = [f"<protein>{protein}</protein>", "<protein>MSTNPKPQRKTKRNTNRRPQDVKF</protein>"]
    return _row(pid, "dna_to_protein", "multiomics_alignment", f"Which protein does this coding sequence "
                f"encode (genetic code: NCBI translation table 11)?\n<dna>{cds}</dna>\n{_lettered(choices)}",
                choices[0], "multiple_choice", {"codon_table": 11}, choices)


def integration_problem(pid: str, expressed: bool, answer: str) -> dict:
    tf, site = SITES["MA9991.1"]
    genes = ["CD3D", "GATA1" if expressed else "GENE1", "LTB"]
    dna = "C" * 20 + site + "C" * 20
    evidence = {"motif_id": "MA9991.1", "tf_name": tf, "site_position": 20,
                "tf_rank_in_sentence": 2 if expressed else None}
    return _row(pid, "cell_dna_tf_expression", "multiomics_integration", "Is the factor that binds this "
                f"site expressed in this cell?\n<cell>{', '.join(genes)}</cell>\n<dna>{dna}</dna>",
                answer, "yes_no", evidence)


def instruction_problem(pid: str, split: str = "train") -> dict:
    return _row(pid, "instruction_alignment", "instruction_alignment", "How many bases long is this DNA "
                "sequence?\n<dna>ACGTACGTAC</dna>", "10", "label", {"kind": "dna_length", "length": 10},
                split=split)


def problems() -> pd.DataFrame:
    """Cells whose markers agree with the label, cells whose markers contradict it, a planted TF
    site, perturbations whose neighbours agree or not, and untouched test problems."""
    rows = [cell_problem("cell-ok-b", ["CD79A", "MS4A1", "GENE0"], "B cell"),
            cell_problem("cell-ok-t", ["CD3D", "IL7R", "CD3E"], "T cell", "label"),
            cell_problem("cell-ok-mono", ["LYZ", "CD14", "GENE3"], "Monocyte", "gene_set"),
            cell_problem("cell-bad", ["CD79A", "MS4A1", "CD19", "GENE5", "CD3D"], "T cell"),
            cell_problem("cell-test", ["CD14", "LYZ"], "Monocyte", split="test"),
            tf_problem("tf-gata", "MA9991.1", 1), tf_problem("tf-spi", "MA9992.1", 2),
            perturb_problem("pert-yes", [1, 1, 0], "yes"), perturb_problem("pert-no", [0, 0], "no"),
            perturb_problem("pert-bad", [1, 1, 1], "no"), perturb_problem("pert-up", [1, 1], "up", "dir"),
            clinical_problem("rd-ok", "rare_disease", [1, 2, 7], "Alpha syndrome (OMIM:100001)",
                             ["Alpha syndrome (OMIM:100001)", "Beta syndrome (OMIM:100002)"]),
            clinical_problem("rd-bad", "rare_disease", [6, 7, 2], "Gamma disease (OMIM:100003)",
                             ["Gamma disease (OMIM:100003)", "Delta disease (OMIM:100004)"]),
            clinical_problem("cg-ok", "causal_gene", [4, 5, 6], "GENEB", ["GENEA", "GENEB", "GENEC"]),
            translation_problem("d2p-ok"),
            integration_problem("int-yes", True, "yes"), integration_problem("int-no", False, "no"),
            instruction_problem("ia-train"), instruction_problem("ia-test", "test")]
    return schemas.Problems.validate(pd.DataFrame(rows))
