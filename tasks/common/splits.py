"""Entity splits: every entity (cell, motif, disease, gene, protein, window, CDS) gets one split.

Splits are assigned once per namespace over the whole pool, before any problem is built, so every
family that touches the same entity puts it in the same split; within a stratum (e.g. a cell type
or a protein family) the test share is exact, so small strata still reach both splits.
PerturbQA keeps the benchmark's own split; :func:`check_leakage` verifies everything afterwards.

>>> s = assign_splits(["a", "b", "c", "d", "e"], 0.4, seed=0)
>>> sorted(s.values()).count("test")
2
>>> check_leakage(pd.DataFrame({"entity": ["x", "x"], "split": ["train", "test"],
...                             "family": ["f", "g"]}))
Traceback (most recent call last):
...
tasks.common.splits.LeakageError: 1 entities in both splits, e.g. 'x' (families ['f', 'g'])
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd


class LeakageError(AssertionError):
    """An entity is in train and test, or a family is missing from a split."""


def _rank_key(seed: int, entity: str) -> str:
    return hashlib.sha1(f"{seed}|{entity}".encode()).hexdigest()


def assign_splits(entities: Iterable[str], test_fraction: float, seed: int,
                  strata: dict[str, str] | None = None) -> dict[str, str]:
    """``{entity: "train"|"test"}``: per stratum, the lowest-hash ``round(f*n)`` entities are test.

    A stratum of two or more entities always has at least one of each split (when 0 < f < 1).
    """
    groups: dict[str, list[str]] = {}
    for entity in dict.fromkeys(entities):
        groups.setdefault((strata or {}).get(entity, ""), []).append(entity)
    out: dict[str, str] = {}
    for members in groups.values():
        members.sort(key=lambda e: _rank_key(seed, e))
        n_test = round(test_fraction * len(members))
        if len(members) >= 2 and 0 < test_fraction < 1:
            n_test = min(max(n_test, 1), len(members) - 1)
        out.update({e: ("test" if i < n_test else "train") for i, e in enumerate(members)})
    return out


def cell_strata(cell_ids: Iterable[str], labels: Iterable[object]) -> dict[str, str]:
    """``{"cell:<id>": "cell|<type>"}``: cells are split within their cell type (unlabelled cells
    together), by the problems stage and, for the marker genes, by the corpus stage alike.

    >>> cell_strata(["a", "b"], ["B cell", float("nan")])
    {'cell:a': 'cell|B cell', 'cell:b': 'cell|'}
    """
    return {f"cell:{c}": f"cell|{'' if pd.isna(lab) else lab}" for c, lab in zip(cell_ids, labels)}


def check_leakage(df: pd.DataFrame) -> None:
    """Fail if any entity appears in both splits (across all families)."""
    per_entity = df.groupby("entity")["split"].nunique()
    leaked = per_entity[per_entity > 1]
    if len(leaked):
        first = leaked.index[0]
        families = sorted(df.loc[df["entity"] == first, "family"].unique())
        raise LeakageError(f"{len(leaked)} entities in both splits, e.g. {first!r} "
                           f"(families {families})")


def check_families_present(df: pd.DataFrame, families: Iterable[str]) -> None:
    """An empty family in train or in test is an error, never a silent gap."""
    counts = df.groupby(["family", "split"]).size()
    missing = [f"{family}/{split}" for family in families for split in ("train", "test")
               if counts.get((family, split), 0) == 0]
    if missing:
        raise LeakageError(f"families without problems: {missing}")
