import pandas as pd
from pathlib import Path
import pytest

from tasks.common.errors import InputError
from tasks.common.schemas import Markers
from tasks.common.storage import atomic_path, read_table, write_table


def _markers(n=2):
    return pd.DataFrame({"cell_type": ["B"] * n, "gene": [f"G{i}" for i in range(n)],
                         "rank": range(1, n + 1), "score": 1.0, "logfoldchange": 0.5})


def test_roundtrip(tmp_path):
    write_table(_markers(), tmp_path / "m.parquet", Markers)
    assert read_table(tmp_path / "m.parquet", Markers).equals(_markers().astype({"rank": "int64"}))


def test_schema_violation_names_file_and_row_and_keeps_old_output(tmp_path):
    path = tmp_path / "m.parquet"
    write_table(_markers(), path, Markers)
    before = path.read_bytes()
    bad = _markers(3)
    bad.loc[2, "rank"] = 0
    with pytest.raises(InputError, match=r"m\.parquet: row 2: schema Markers"):
        write_table(bad, path, Markers)
    assert path.read_bytes() == before


def test_interrupted_write_leaves_previous_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_folder_replace(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "stale.parquet").write_text("x")
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "new.parquet").write_text("y")
    assert sorted(p.name for p in folder.iterdir()) == ["new.parquet"]


def test_missing_input_is_one_line(tmp_path):
    with pytest.raises(InputError, match="missing: run the stage"):
        read_table(tmp_path / "nope.parquet", Markers)


def test_write_csv_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    import pandas as pd

    from tasks.common.storage import write_csv

    path = tmp_path / "rates.csv"
    write_csv(pd.DataFrame({"family": ["a"], "rate": [0.5]}), path)

    def half_written(self, target, **kw):
        Path(target).write_text("family,ra")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_written)
    with pytest.raises(OSError):
        write_csv(pd.DataFrame({"family": ["b"], "rate": [1.0]}), path)
    assert path.read_text() == "family,rate\na,0.5\n"
    assert [p.name for p in tmp_path.iterdir()] == ["rates.csv"]
