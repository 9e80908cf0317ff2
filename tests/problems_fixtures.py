"""Small synthetic inputs for the problems unit tests (real data is used by the slow flow test)."""
from __future__ import annotations

import numpy as np
import pandas as pd

BASES = "ACGT"


def pfm_for(consensus: str, strength: float = 0.94) -> list[list[float]]:
    rest = (1 - strength) / 3
    return [[strength if b == c else rest for b in BASES] for c in consensus]


def motif_table() -> pd.DataFrame:
    rows = [("M1", "TFA", "Class one", "GGGACTTTCC"), ("M2", "TFB", "Class two", "TGACGTCATA"),
            ("M3", "TFC", "Class three", "CACGTGACCA"), ("M4", "TFD", "Class four", "TAATTAGCGC"),
            ("M5", "TFE", "Class five", "CCAATCAGGT"), ("M6", "TFF", "Class one", "GGGAATTTCC"),
            ("M7", "TFG", "unknown", "ATATATGCGC")]
    return pd.DataFrame([{"motif_id": m, "tf_name": t, "tf_class": c, "tf_family": "f",
                          "length": len(s), "pfm": pfm_for(s), "counts_consistent": True}
                         for m, t, c, s in rows])


def dna_table(n: int = 12, length: int = 256, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        seq = "".join(rng.choice(list(BASES), size=length))
        rows.append({"window_id": f"r{i}:0-{length}", "record_id": f"r{i}", "source_file": "x.fna",
                     "start": 0, "end": length, "gc": (seq.count("G") + seq.count("C")) / length,
                     "sequence": seq, "text": f"<dna>{seq}</dna>"})
    return pd.DataFrame(rows)


def cell_table(n_per_type: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    types = {"B": ["CD79A", "MS4A1", "CD19"], "T": ["CD3D", "CD3E", "IL7R"],
             "Mono": ["LYZ", "CD14", "S100A8"], "NK": ["NKG7", "GNLY", "KLRD1"],
             "DC": ["FCER1A", "CST3", "CLEC10A"]}
    background = [f"G{i}" for i in range(40)] + ["TFA", "TFB", "TFC"]
    rows = []
    for t, markers in types.items():
        for k in range(n_per_type):
            genes = list(markers[:2 + k % 2]) + list(rng.choice(background, size=20, replace=False))
            rows.append({"cell_id": f"{t}-{k}", "label": t, "n_genes": len(genes),
                         "total_counts": 100.0, "cell_sentence": "<cell>" + ", ".join(genes) + "</cell>"})
    return pd.DataFrame(rows)


def marker_table() -> pd.DataFrame:
    cells = cell_table(1)
    rows = []
    for t, genes in {"B": ["CD79A", "MS4A1", "CD19"], "T": ["CD3D", "CD3E", "IL7R"],
                     "Mono": ["LYZ", "CD14", "S100A8"], "NK": ["NKG7", "GNLY", "KLRD1"],
                     "DC": ["FCER1A", "CST3", "CLEC10A"]}.items():
        rows += [{"cell_type": t, "gene": g, "rank": i + 1, "score": 5.0 - i, "logfoldchange": 1.0}
                 for i, g in enumerate(genes)]
    assert len(cells)
    return pd.DataFrame(rows)


def all_test_or_train(entities, split: str = "train") -> dict[str, str]:
    return {e: split for e in entities}
