"""DNA and proteins as text: validated alphabets, DNA cut into windows, ``<dna>``/``<protein>`` tags.

Sources are files or folders; ``pkg:relpath`` names data shipped inside an installed package
(the embedded default uses the test data of the pyhmmer and pyrodigal wheels); a relpath may be
a glob. Records whose alphabet is wrong, that are empty, or whose id repeats within a file fail
with the file, the record and the problem, or are dropped and counted (``on_bad_record: drop``).

>>> first_bad_letter("ACGTNACGT", DNA_LETTERS), first_bad_letter("ACGUA", DNA_LETTERS)
(-1, 3)
>>> starts, ends = window_bounds(600, window=256, stride=256, min_window=64, max_windows=10)
>>> list(zip(starts.tolist(), ends.tolist()))
[(0, 256), (256, 512), (512, 600)]
"""
from __future__ import annotations

import gzip
import importlib.util
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from Bio import SeqIO

from tasks.common.errors import InputError
from tasks.common.params import Dna, Proteins
from tasks.common.schemas import DNA_ALPHABET, PROTEIN_ALPHABET

DNA_LETTERS = "".join(sorted(DNA_ALPHABET))
PROTEIN_LETTERS = "".join(sorted(PROTEIN_ALPHABET))
DNA_SUFFIXES = (".fna", ".fa", ".fasta", ".ffn", ".fas", ".gbk", ".gb", ".gbff", ".genbank")
PROTEIN_SUFFIXES = (".faa", ".fa", ".fasta", ".fas")
_GENBANK = (".gbk", ".gb", ".gbff", ".genbank")


@dataclass
class SeqCounts:
    """What happened to the records, for metrics."""

    files: int = 0
    records_in: int = 0
    records_out: int = 0
    dropped: Counter = field(default_factory=Counter)


# --- sources ------------------------------------------------------------------------------------

def _stem_suffix(path: Path) -> str:
    name = path.name.lower()
    return Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()


def resolve_sources(sources: list[str], suffixes: tuple[str, ...]) -> list[tuple[Path, str]]:
    """Files named by ``sources`` as (path, display name); folders give their files by suffix."""
    found: dict[Path, str] = {}
    for source in sources:
        if ":" in source and not Path(source).exists():
            package, rel = source.split(":", 1)
            spec = importlib.util.find_spec(package)
            if spec is None or not spec.submodule_search_locations:
                raise InputError(source, "source", f"no installed package {package!r}")
            root = Path(list(spec.submodule_search_locations)[0])
            label = lambda p, root=root, package=package: f"{package}:{p.relative_to(root).as_posix()}"  # noqa: E731
        else:
            root, rel = Path("."), source
            label = str
        paths = sorted(root.glob(rel)) if any(c in rel for c in "*?[") else [root / rel]
        if not paths or not all(p.exists() for p in paths):
            raise InputError(source, "source", "not found")
        for path in paths:
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for f in files:
                if not path.is_dir() or _stem_suffix(f) in suffixes:
                    found.setdefault(f.resolve(), label(f))
    return list(found.items())


def read_records(path: Path) -> Iterator[tuple[str, str, str]]:
    """(id, description, sequence) of each record of a FASTA or GenBank file, gzipped or not.

    A file with no record (empty, or blank lines only), or whose first line is not a FASTA header
    (``>``) or a GenBank ``LOCUS`` line, is refused in one line rather than read as nothing or
    left to the parser's multi-line advice.
    """
    fmt = "genbank" if _stem_suffix(path) in _GENBANK else "fasta"
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    name, start = ("FASTA", ">") if fmt == "fasta" else ("GenBank", "LOCUS")
    n = 0
    try:
        with opener(path, "rt") as handle:
            line_no, first = next(((i, line) for i, line in enumerate(handle, start=1) if line.strip()),
                                  (0, ""))
            if not first:
                raise InputError(path, "file", f"empty: no {name} record")
            if not first.lstrip().startswith(start):
                raise InputError(path, f"line {line_no}", f"not {name}: a record starts with {start!r}, "
                                 f"the file with {first.strip()[:40]!r}")
            handle.seek(0)
            for rec in SeqIO.parse(handle, fmt):
                n += 1
                yield rec.id, rec.description, str(rec.seq)
    except (ValueError, OSError, UnicodeDecodeError, EOFError) as err:
        if isinstance(err, InputError):
            raise
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(path, f"record #{n + 1}", f"not readable as {fmt} ({first_line})") from None


# --- pure checks --------------------------------------------------------------------------------

def first_bad_letter(seq: str, letters: str) -> int:
    """Index of the first letter not in ``letters`` (uppercase), or -1."""
    allowed = np.zeros(256, np.bool_)
    allowed[np.frombuffer(letters.encode(), np.uint8)] = True
    codes = np.frombuffer(seq.encode("ascii", errors="replace"), np.uint8)
    bad = np.flatnonzero(~allowed[codes])
    return int(bad[0]) if bad.size else -1


def window_bounds(length: int, window: int, stride: int, min_window: int, max_windows: int):
    """Start/end of each window; a last window shorter than ``min_window`` is left out."""
    starts = np.arange(0, max(length, 1), stride)[:max_windows]
    ends = np.minimum(starts + window, length)
    keep = (ends - starts) >= min(min_window, window)
    return starts[keep], ends[keep]


def _checked(path: Path, label: str, letters: str, on_bad: str, counts: SeqCounts,
             strip_stop: bool = False) -> Iterator[tuple[str, str, str]]:
    """Records of one file that pass the alphabet/empty/duplicate checks, uppercased."""
    seen: dict[str, int] = {}
    counts.files += 1
    for n, (rid, desc, seq) in enumerate(read_records(path), start=1):
        counts.records_in += 1
        seq = seq.upper()
        if strip_stop and seq.endswith("*"):
            seq = seq[:-1]
        problem, reason = None, None
        if rid in seen:
            problem, reason = f"duplicate record id (first seen as record {seen[rid]})", "duplicate_id"
        elif not seq:
            problem, reason = "empty sequence", "empty"
        else:
            pos = first_bad_letter(seq, letters)
            if pos >= 0:
                problem = f"letter {seq[pos]!r} at position {pos + 1} is not one of {letters}"
                reason = "invalid_letter"
        seen.setdefault(rid, n)
        if problem is None:
            yield rid, desc, seq
        elif on_bad == "error":
            raise InputError(label, f"record {rid!r} (#{n})", problem)
        else:
            counts.dropped[reason] += 1


# --- modalities ---------------------------------------------------------------------------------

def dna_windows(sources: list[str], cfg: Dna) -> tuple[pd.DataFrame, SeqCounts]:
    """Every valid DNA record cut into windows, one row per ``<dna>`` text (DnaWindows)."""
    counts, rows = SeqCounts(), []
    for path, label in resolve_sources(sources, DNA_SUFFIXES):
        for rid, _, seq in _checked(path, label, DNA_LETTERS, cfg.on_bad_record, counts):
            counts.records_out += 1
            codes = np.frombuffer(seq.encode(), np.uint8)
            # prefix sums give every window's GC and N content without a loop over bases
            gc = np.concatenate([[0], np.cumsum((codes == ord("G")) | (codes == ord("C")))])
            unknown = np.concatenate([[0], np.cumsum(codes == ord("N"))])
            n_all = len(np.arange(0, len(seq), cfg.stride))
            starts, ends = window_bounds(len(seq), cfg.window, cfg.stride, cfg.min_window,
                                         cfg.max_windows_per_record)
            counts.dropped["windows_over_cap"] += max(0, n_all - cfg.max_windows_per_record)
            n_frac = (unknown[ends] - unknown[starts]) / (ends - starts)
            mostly_n = n_frac > cfg.max_n_fraction
            counts.dropped["windows_mostly_n"] += int(mostly_n.sum())
            for start, end in zip(starts[~mostly_n].tolist(), ends[~mostly_n].tolist()):
                known = (end - start) - (unknown[end] - unknown[start])
                window = seq[start:end]
                rows.append((f"{label}:{rid}:{start}-{end}", rid, label, start, end,
                             float(gc[end] - gc[start]) / known if known else 0.0,
                             window, f"<dna>{window}</dna>"))
    columns = ["window_id", "record_id", "source_file", "start", "end", "gc", "sequence", "text"]
    return pd.DataFrame(rows, columns=columns), counts


def protein_texts(sources: list[str], cfg: Proteins) -> tuple[pd.DataFrame, SeqCounts]:
    """Every valid protein as one ``<protein>`` text (ProteinSequences); over-long ones counted."""
    counts, rows = SeqCounts(), []
    for path, label in resolve_sources(sources, PROTEIN_SUFFIXES):
        for rid, desc, seq in _checked(path, label, PROTEIN_LETTERS, cfg.on_bad_record, counts,
                                       strip_stop=True):
            if len(seq) > cfg.max_length:
                counts.dropped["too_long"] += 1
                continue
            counts.records_out += 1
            rows.append((f"{label}:{rid}", rid, label, desc, len(seq), seq, f"<protein>{seq}</protein>"))
    columns = ["protein_id", "record_id", "source_file", "description", "length", "sequence", "text"]
    return pd.DataFrame(rows, columns=columns), counts
