"""A persistent store of teacher and solver calls, so a killed or repeated run pays for nothing twice.

Each call is keyed by a hash of (endpoint, model, messages, sampling params) and its reply is
committed the moment it arrives. Rerunning after a crash or a SIGKILL sends only the calls whose
reply never reached the store.

Why SQLite in an untracked scratch folder (``.cache/annotate/calls.sqlite``) rather than a DVC
``persist: true`` out: DVC would copy the whole database into its cache after every run and
restore it on checkout, while the store is neither an input nor an output of the stage: it only
decides which calls can be skipped. A transaction per reply (WAL journal) survives a SIGKILL at
any point with every committed reply intact; a file per reply would too, but leaves thousands of
files and no cheap count.

>>> import tempfile
>>> cache = CallCache(Path(tempfile.mkdtemp()) / "calls.sqlite")
>>> k = call_key("offline", "m", [{"role": "user", "content": "hi"}], {"temperature": 0})
>>> cache.get(k) is None
True
>>> cache.put(k, "hello", prompt_tokens=3, completion_tokens=1)
>>> cache.get(k).text, cache.get(k).completion_tokens
('hello', 1)
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def call_key(endpoint: str, model: str, messages: list[dict[str, str]], sampling: dict[str, Any]) -> str:
    """sha256 of the call's identity; anything that changes the reply must be in ``sampling``."""
    blob = json.dumps({"endpoint": endpoint, "model": model, "messages": messages,
                       "sampling": sampling}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    text: str
    prompt_tokens: int
    completion_tokens: int


class CallCache:
    """Thread-safe key -> reply store; every ``put`` is its own committed transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, text TEXT NOT NULL, "
                         "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                         "created REAL NOT NULL)")

    def get(self, key: str) -> CachedReply | None:
        with self._lock:
            row = self._db.execute("SELECT text, prompt_tokens, completion_tokens FROM calls WHERE key = ?",
                                   (key,)).fetchone()
        return CachedReply(*row) if row else None

    def put(self, key: str, text: str, prompt_tokens: int = 0, completion_tokens: int = 0) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
                             (key, text, int(prompt_tokens), int(completion_tokens), time.time()))

    def keys(self) -> set[str]:
        with self._lock:
            return {k for (k,) in self._db.execute("SELECT key FROM calls")}

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
