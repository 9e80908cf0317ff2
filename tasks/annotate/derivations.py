"""Short deterministic derivations for instruction-alignment problems (their answers are computed).

Each problem's evidence names its ``kind`` and the numbers the answer was computed from; the
derivation states that computation in one or two steps, so SFT phase 1 teaches the tag formats
with reasoning that is true by construction.

>>> derive({"kind": "dna_length", "length": 12}, "12")
['The sequence between the <dna> tags is read base by base.', 'It has 12 bases.']
"""
from __future__ import annotations


def _positions(evidence: dict) -> str:
    pos = [str(p) for p in evidence.get("positions", [])]
    return ", ".join(pos[:30]) + (f" and {len(pos) - 30} more" if len(pos) > 30 else "")


DERIVATIONS = {
    "cell_top_gene": lambda e, a: ["The cell sentence lists genes from the most to the least expressed.",
                                   f"The first gene listed is {a}."],
    "cell_gene_rank": lambda e, a: ["The cell sentence lists genes from the most to the least expressed.",
                                    f"Counting from the start, {e['gene']} is gene number {e['rank']}."],
    "cell_gene_present": lambda e, a: (
        ["The cell sentence is scanned gene by gene.",
         f"{e['gene']} appears at rank {e['rank']}." if e.get("rank") else
         f"{e['gene']} does not appear anywhere in the sentence."]),
    "dna_length": lambda e, a: ["The sequence between the <dna> tags is read base by base.",
                                f"It has {e['length']} bases."],
    "dna_gc_bucket": lambda e, a: ["G and C bases are counted over the whole sequence.",
                                   f"{e['gc_count']} of {e['length']} bases are G or C, a GC content of "
                                   f"{100 * e['gc']:.1f}%, which lies in the range {a}."],
    "protein_length": lambda e, a: ["The sequence between the <protein> tags is read residue by residue.",
                                    f"It has {e['length']} residues."],
    "protein_residue_count": lambda e, a: (
        [f"The protein is scanned for {e['residue']}.",
         f"{e['residue']} occurs at positions {_positions(e)}, {e['count']} times in all."]
        if e["count"] else [f"The protein is scanned for {e['residue']}.", f"{e['residue']} does not occur."]),
}


def derive(evidence: dict, answer: str) -> list[str]:
    """Steps of the computation behind ``answer``; KeyError for a kind with no derivation."""
    kind = evidence.get("kind")
    if kind not in DERIVATIONS:
        raise KeyError(f"no derivation for instruction kind {kind!r}")
    return DERIVATIONS[kind](evidence, answer)
