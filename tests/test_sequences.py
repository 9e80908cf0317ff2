"""DNA windows and protein texts: alphabets, bad records, windows, shipped sources, the CLI."""
from __future__ import annotations

import gzip

import pandas as pd
import pytest
from typer.testing import CliRunner

from tasks.cli import app
from tasks.common.errors import InputError
from tasks.common.params import Dna, Proteins
from tasks.common.schemas import DnaWindows, ProteinSequences
from tasks.textify.sequences import dna_windows, protein_texts, resolve_sources, DNA_SUFFIXES


def fasta(path, records):
    path.write_text("".join(f">{rid} some description\n{seq}\n" for rid, seq in records))
    return str(path)


def dna_cfg(**kw) -> Dna:
    return Dna(**{"sources": [], "window": 10, "stride": 10, "min_window": 4, **kw})


def test_windows_gc_and_tags(tmp_path):
    src = fasta(tmp_path / "a.fna", [("r1", "acgtacgtGG" + "GGGGCCCCAA" + "ATA"), ("r2", "ATAT")])
    df, counts = dna_windows([src], dna_cfg())
    DnaWindows.validate(df)
    assert df["window_id"].tolist() == [f"{src}:r1:0-10", f"{src}:r1:10-20", f"{src}:r2:0-4"]
    assert df["sequence"][0] == "ACGTACGTGG"  # uppercased
    assert df["gc"].round(2).tolist() == [0.6, 0.8, 0.0]
    assert df["text"][2] == "<dna>ATAT</dna>"
    assert counts.records_out == 2  # the 3-base tail of r1 is shorter than min_window


def test_window_cap_and_mostly_n_windows(tmp_path):
    src = fasta(tmp_path / "a.fa", [("r", "A" * 10 + "N" * 10 + "C" * 50)])
    df, counts = dna_windows([src], dna_cfg(max_windows_per_record=4, max_n_fraction=0.5))
    assert df["start"].tolist() == [0, 20, 30]
    assert counts.dropped["windows_mostly_n"] == 1 and counts.dropped["windows_over_cap"] == 3


@pytest.mark.parametrize("records,problem", [
    ([("r1", "ACGT"), ("bad", "ACGRT")], r"record 'bad' \(#2\): letter 'R' at position 4"),
    ([("r1", "ACGT"), ("empty", "")], r"record 'empty' \(#2\): empty sequence"),
    ([("r1", "ACGT"), ("r1", "GGCC")], r"record 'r1' \(#2\): duplicate record id"),
])
def test_bad_dna_records_name_file_and_record(tmp_path, records, problem):
    src = fasta(tmp_path / "bad.fna", records)
    with pytest.raises(InputError, match=rf"bad\.fna: {problem}"):
        dna_windows([src], dna_cfg())
    df, counts = dna_windows([src], dna_cfg(on_bad_record="drop"))
    assert counts.records_in == 2 and counts.records_out == 1 and sum(
        counts.dropped[k] for k in ("invalid_letter", "empty", "duplicate_id")) == 1
    assert df["record_id"].unique().tolist() == ["r1"]


def test_genbank_and_gzip_inputs(tmp_path):
    gz = tmp_path / "g.fna.gz"
    with gzip.open(gz, "wt") as fh:
        fh.write(">z\nACGTACGTAC\n")
    df, _ = dna_windows([str(gz), "pyhmmer:tests/data/seqs/BGC0001090.gbk"], dna_cfg(max_windows_per_record=2))
    assert df["record_id"].tolist() == ["z", "BGC0001090.1", "BGC0001090.1"]
    assert df["source_file"][1] == "pyhmmer:tests/data/seqs/BGC0001090.gbk"


def test_shipped_sources_resolve_and_missing_ones_fail():
    files = resolve_sources(["pyrodigal:tests/data/*.fna.gz", "pyhmmer:tests/data/seqs"], DNA_SUFFIXES)
    names = [label for _, label in files]
    assert "pyhmmer:tests/data/seqs/bmyD.fna" in names and not any(n.endswith(".faa") for n in names)
    assert any(n.startswith("pyrodigal:tests/data/") for n in names)
    with pytest.raises(InputError, match="no installed package"):
        resolve_sources(["nosuchpkg:x"], DNA_SUFFIXES)
    with pytest.raises(InputError, match="not found"):
        resolve_sources(["pyhmmer:tests/data/none.fna"], DNA_SUFFIXES)


def test_proteins_stop_codon_length_cap_and_bad_letters(tmp_path):
    src = fasta(tmp_path / "p.faa", [("p1", "mkvl*"), ("p2", "MKVLAAAAAAAAAA"), ("p3", "MKUOX")])
    df, counts = protein_texts([src], Proteins(sources=[src], max_length=10))
    ProteinSequences.validate(df)
    assert df["sequence"].tolist() == ["MKVL", "MKUOX"] and df["text"][0] == "<protein>MKVL</protein>"
    assert df["protein_id"][0] == f"{src}:p1" and counts.dropped["too_long"] == 1
    bad = fasta(tmp_path / "q.faa", [("p1", "MK*VL")])
    with pytest.raises(InputError, match=r"q\.faa: record 'p1' \(#1\): letter '\*' at position 3"):
        protein_texts([bad], Proteins(sources=[bad]))


def test_embedded_default_sources():
    df, counts = protein_texts(["pyhmmer:tests/data/seqs"], Proteins(sources=[], max_length=2000))
    assert counts.files == 3 and len(df) > 2000 and df["protein_id"].is_unique


def test_cli_dna_and_proteins(tmp_path):
    runner = CliRunner()
    src = fasta(tmp_path / "a.fna", [("r1", "ACGT" * 30)])
    ok = runner.invoke(app, ["textify", "dna", src, str(tmp_path / "d.parquet"), "--window", "50", "--stride", "50",
                             "--min-window", "20"])
    assert ok.exit_code == 0, ok.output
    assert pd.read_parquet(tmp_path / "d.parquet")["end"].tolist() == [50, 100, 120]
    bad = fasta(tmp_path / "b.fna", [("r1", "ACGU")])
    res = runner.invoke(app, ["textify", "dna", bad, str(tmp_path / "e.parquet")])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "b.fna: record 'r1' (#1): letter 'U'" in res.stderr
    res = runner.invoke(app, ["textify", "proteins", bad, str(tmp_path / "p.parquet")])
    assert res.exit_code == 0  # U (selenocysteine) is an amino acid
    res = runner.invoke(app, ["textify", "proteins", str(tmp_path / "none.faa"), str(tmp_path / "p.parquet")])
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "not found" in res.stderr


@pytest.mark.parametrize("name,text,problem", [
    ("empty.fna", "", r"empty\.fna: file: empty: no FASTA record"),
    ("blank.fa", "\n  \n\n", r"blank\.fa: file: empty: no FASTA record"),
    ("empty.gbk", "", r"empty\.gbk: file: empty: no GenBank record"),
    ("notes.fna", "\nsample sheet, run 3\nACGT\n", r"notes\.fna: line 2: not FASTA: a record starts with '>'"),
    ("reads.gbk", ">r1\nACGT\n", r"reads\.gbk: line 1: not GenBank: a record starts with 'LOCUS'"),
])
def test_empty_and_foreign_files_are_refused_in_one_line(tmp_path, name, text, problem):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=problem) as err:
        dna_windows([str(tmp_path / name)], dna_cfg(on_bad_record="drop"))
    assert "\n" not in str(err.value)


def test_cli_refuses_an_empty_fasta_and_keeps_the_earlier_output(tmp_path):
    runner = CliRunner()
    out = tmp_path / "d.parquet"
    good = fasta(tmp_path / "a.fna", [("r1", "ACGT" * 30)])
    assert runner.invoke(app, ["textify", "dna", good, str(out)]).exit_code == 0
    before = out.read_bytes()
    for text in ("", "not a sequence file\nat all\n" * 7):
        (tmp_path / "b.fna").write_text(text)
        res = runner.invoke(app, ["textify", "dna", str(tmp_path / "b.fna"), str(out)])
        assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
        assert out.read_bytes() == before


def test_soft_masked_multiline_crlf_and_gzipped_dna_are_accepted(tmp_path):
    text = ">r1 chr1 soft-masked\r\nacgtacgtAC\r\nGTacgtNNNN\r\n\r\n>r2\r\nGGGGCCCCAT\r\n"
    (tmp_path / "crlf.fa").write_bytes(text.encode())
    with gzip.open(tmp_path / "crlf.fa.gz", "wb") as fh:
        fh.write(text.encode())
    for name in ("crlf.fa", "crlf.fa.gz"):
        df, counts = dna_windows([str(tmp_path / name)], dna_cfg())
        assert df["sequence"].tolist() == ["ACGTACGTAC", "GTACGTNNNN", "GGGGCCCCAT"], name
        assert counts.records_out == 2 and not sum(counts.dropped.values())


def test_proteins_lowercase_with_stop_and_crlf_are_accepted(tmp_path):
    (tmp_path / "p.faa").write_bytes(b">p1\r\nmkvla\r\nqw*\r\n>p2\r\nMKV\r\n")
    df, counts = protein_texts([str(tmp_path / "p.faa")], Proteins(sources=[]))
    assert df["sequence"].tolist() == ["MKVLAQW", "MKV"] and counts.records_out == 2
