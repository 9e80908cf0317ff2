"""BioCorpus: one plain-text document per knowledge-table entity, plus optional user sources,
deduplicated exactly (normalised hash) and approximately (MinHash LSH from datasketch).

>>> docs = pd.DataFrame({"doc_id": ["a", "b", "c"], "source": "x", "title": "",
...     "text": ["Seizure is a sudden event of the brain with many causes in people",
...              "seizure is a  sudden event of the brain with many causes in people",
...              "Motif MA0004.1 binds CACGTG"]})
>>> kept, stats = deduplicate(docs, threshold=0.8, num_perm=64, shingle_words=3, seed=0)
>>> list(kept.doc_id), stats["exact_duplicates"]
(['a', 'c'], 1)
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common.errors import InputError

_WS = re.compile(r"\s+")


def _doc(doc_id: str, source: str, title: str, text: str) -> dict:
    return {"doc_id": doc_id, "source": source, "title": title, "text": _WS.sub(" ", text).strip()}


def _list(items, limit: int | None = None) -> str:
    items = list(items)
    shown = items[:limit] if limit else items
    more = f" and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return ", ".join(shown) + more


def hpo_documents(terms: pd.DataFrame, limit: int | None) -> list[dict]:
    names = dict(zip(terms["id"], terms["name"]))
    rows = terms if limit is None else terms.head(limit)
    docs = []
    for t in rows.itertuples():
        text = f"{t.name} ({t.id})."
        if t.definition:
            text += f" {t.definition}"
        if len(t.synonyms):
            text += f" Also called: {_list(t.synonyms)}."
        if len(t.parents):
            text += f" It is a kind of {_list(names.get(p, p) for p in t.parents)}."
        docs.append(_doc(f"hpo:{t.id}", "hpo", t.name, text))
    return docs


def disease_documents(disease_phenotypes: pd.DataFrame, disease_genes: pd.DataFrame,
                      terms: pd.DataFrame) -> list[dict]:
    names = dict(zip(terms["id"], terms["name"]))
    genes = disease_genes.groupby("disease_id")["gene_symbol"].apply(list).to_dict()
    docs = []
    for disease_id, group in disease_phenotypes.groupby("disease_id", sort=True):
        name = group["disease_name"].iloc[0]
        text = (f"{name} ({disease_id}) presents with "
                f"{_list((names.get(h, h) for h in group['hpo_id']), 40)}.")
        if disease_id in genes:
            text += f" Associated genes: {_list(genes[disease_id])}."
        docs.append(_doc(f"disease:{disease_id}", group["source"].iloc[0].lower(), name, text))
    return docs


def gene_documents(gene_phenotypes: pd.DataFrame, terms: pd.DataFrame) -> list[dict]:
    names = dict(zip(terms["id"], terms["name"]))
    docs = []
    for symbol, group in gene_phenotypes.groupby("gene_symbol", sort=True):
        text = (f"Variants in the gene {symbol} are annotated with the phenotypes "
                f"{_list((names.get(h, h) for h in group['hpo_id']), 40)}.")
        docs.append(_doc(f"gene:{symbol}", "hpo_gene", symbol, text))
    return docs


def motif_documents(motifs: pd.DataFrame) -> list[dict]:
    docs = []
    for m in motifs.itertuples():
        pfm = np.asarray([list(row) for row in m.pfm], dtype=float)
        consensus = "".join("ACGT"[i] for i in pfm.argmax(axis=1))
        text = (f"The transcription factor {m.tf_name} (JASPAR {m.motif_id}) belongs to the "
                f"{m.tf_class} class, family {m.tf_family}. Its binding motif spans {m.length} "
                f"bases with consensus {consensus}.")
        docs.append(_doc(f"motif:{m.motif_id}", "jaspar", m.tf_name, text))
    return docs


def family_documents(families: pd.DataFrame) -> list[dict]:
    return [_doc(f"family:{f.name}", "pfam", f.name,
                 f"The protein family {f.name} ({f.accession}): {f.description}. "
                 f"Its profile HMM has {f.length} match states.")
            for f in families.itertuples()]


def cell_type_documents(markers: pd.DataFrame) -> list[dict]:
    docs = []
    for cell_type, group in markers.sort_values("rank").groupby("cell_type", sort=True):
        text = (f"{cell_type} cells from peripheral blood are distinguished by high expression of "
                f"{_list(group['gene'])}.")
        docs.append(_doc(f"celltype:{cell_type}", "markers", cell_type, text))
    return docs


def perturbation_documents(pairs: pd.DataFrame) -> list[dict]:
    """One document per training perturbation; test perturbations never enter the corpus."""
    train = pairs[pairs["split"] == "train"]
    de = train[(train["task"] == "de") & (train["label"] == 1)]
    direction = train[train["task"] == "dir"]
    sign = {(l, p, g): "up" if y == 1 else "down"
            for l, p, g, y in direction[["cell_line", "pert", "gene", "label"]].itertuples(index=False)}
    docs = []
    for (line, pert), group in de.groupby(["cell_line", "pert"], sort=True):
        genes = [f"{g} ({sign[(line, pert, g)]})" if (line, pert, g) in sign else g
                 for g in group["gene"]]
        text = (f"CRISPRi knockdown of {pert} in {line} cells changes the expression of "
                f"{_list(genes, 60)}.")
        docs.append(_doc(f"perturb:{line}:{pert}", "perturbqa", f"{pert} in {line}", text))
    return docs


def user_documents(folders: list[str]) -> list[dict]:
    """.txt/.md files (one document each) and .jsonl files (one per line, field ``text``)."""
    docs = []
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise InputError(root, "folder", "not found (params corpus.user_text_dirs)")
        for path in sorted(root.rglob("*")):
            if path.suffix in (".txt", ".md"):
                docs.append(_doc(f"user:{path.relative_to(root)}", "user", path.stem, path.read_text()))
            elif path.suffix == ".jsonl":
                for i, line in enumerate(path.read_text().splitlines(), start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                        text = record["text"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise InputError(path, f"line {i}", "not a JSON object with a 'text' field") from None
                    docs.append(_doc(f"user:{path.name}:{i}", "user", record.get("title", ""), text))
    return [d for d in docs if d["text"]]


def hf_documents(specs: list[str]) -> list[dict]:
    """Hugging Face datasets by name, ``name[:config[:split]]``; string fields are joined."""
    if not specs:
        return []
    import datasets

    docs = []
    for spec in specs:
        name, config, split = (spec.split(":") + [None, None])[:3]
        try:
            ds = datasets.load_dataset(name, config, split=split or "train")
        except Exception as err:  # network, auth or name errors all end the stage the same way
            raise InputError(spec, "dataset", f"could not load from the Hugging Face hub: {err}") from None
        fields = [k for k, v in ds.features.items() if getattr(v, "dtype", None) == "string"]
        for i, row in enumerate(ds):
            text = " ".join(str(row[k]) for k in fields if row[k])
            docs.append(_doc(f"hf:{name}:{i}", f"hf:{name}", "", text))
    return [d for d in docs if d["text"]]


def _shingles(text: str, size: int) -> list[bytes]:
    words = text.lower().split()
    if len(words) <= size:
        return [" ".join(words).encode()]
    return [" ".join(words[i:i + size]).encode() for i in range(len(words) - size + 1)]


def deduplicate(docs: pd.DataFrame, threshold: float, num_perm: int, shingle_words: int,
                seed: int) -> tuple[pd.DataFrame, dict]:
    """Drop exact duplicates (case/space-normalised) then near-duplicates (MinHash LSH)."""
    from datasketch import MinHash, MinHashLSH

    norm = docs["text"].str.lower().str.replace(_WS, " ", regex=True).str.strip()
    digest = norm.map(lambda t: hashlib.sha1(t.encode()).hexdigest())
    exact = digest.duplicated()
    docs = docs[~exact]
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    keep = []
    for doc_id, text in zip(docs["doc_id"], docs["text"]):
        mh = MinHash(num_perm=num_perm, seed=seed)
        mh.update_batch(_shingles(text, shingle_words))
        if lsh.query(mh):
            keep.append(False)
            continue
        lsh.insert(doc_id, mh)
        keep.append(True)
    kept = docs[np.array(keep, dtype=bool)].reset_index(drop=True)
    return kept, {"exact_duplicates": int(exact.sum()), "near_duplicates": int(len(keep) - sum(keep))}
