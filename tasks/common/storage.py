"""Atomic, schema-checked reads and writes: a stage killed halfway leaves the old file or none.

>>> import tempfile, pandas as pd
>>> d = Path(tempfile.mkdtemp())
>>> write_json({"n": 1}, d / "m.json"); json.loads((d / "m.json").read_text())
{'n': 1}
>>> write_csv(pd.DataFrame({"family": ["a"], "n": [2]}), d / "r.csv"); (d / "r.csv").read_text().splitlines()
['family,n', 'a,2']
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pandera.errors

from tasks.common.errors import InputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` (file or folder); rename it over ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _validate(df: pd.DataFrame, schema: Any, file: Path) -> pd.DataFrame:
    try:
        return schema.validate(df, lazy=False)
    except pandera.errors.SchemaError as err:
        rows = getattr(err, "failure_cases", None)
        where = "table"
        if rows is not None and "index" in getattr(rows, "columns", []) and len(rows):
            where = f"row {rows['index'].iloc[0]}"
        message = f"schema {schema.__name__}: {str(err).splitlines()[0]}"
        raise InputError(file, where, message[:300] + ("..." if len(message) > 300 else "")) from None


def write_table(df: pd.DataFrame, path: str | Path, schema: Any) -> pd.DataFrame:
    """Validate ``df`` against a pandera model and write it as parquet, atomically."""
    path = Path(path)
    df = _validate(df.reset_index(drop=True), schema, path)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return df


def read_table(path: str | Path, schema: Any, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet table written by an earlier stage and check it against its schema."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, "file", "missing: run the stage that writes it (dvc repro)")
    df = pd.read_parquet(path, columns=columns)
    return df if columns else _validate(df, schema, path)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(df: pd.DataFrame, path: str | Path) -> None:
    """A report table as CSV (DVC metrics and plots read these), atomically, without the index."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
