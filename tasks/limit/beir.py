"""BEIR-layout retrieval sets: read one (checked record by record), write one atomically.

A folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl`` (``_id``,
``text``) and qrels as ``qrels.jsonl`` (LIMIT's layout: ``query-id``, ``corpus-id``, ``score``)
or ``qrels/test.tsv`` / ``qrels/test.jsonl`` (BEIR's layout, tsv with a header row).
A qrel with score 0 marks a judged non-relevant document, so relevance means ``score > 0``.

>>> import tempfile
>>> d = Path(tempfile.mkdtemp()) / "toy"
>>> write_beir(BeirSet(["a", "b"], ["A doc", "B doc"], ["q0"], ["a?"], {"q0": {"a": 1}}), d)
>>> s = load_beir(d); (s.doc_ids, s.relevant_ids("q0"))
(['a', 'b'], {'a'})
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tasks.common.errors import InputError
from tasks.common.storage import atomic_path

QREL_FILES = ("qrels.jsonl", "qrels/test.tsv", "qrels/test.jsonl")


@dataclass(frozen=True)
class BeirSet:
    doc_ids: list[str]
    doc_texts: list[str]
    query_ids: list[str]
    query_texts: list[str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: graded relevance}

    def relevant_ids(self, query_id: str) -> set[str]:
        return {doc for doc, score in self.qrels.get(query_id, {}).items() if score > 0}

    def subset_queries(self, keep: list[int]) -> "BeirSet":
        """The same corpus with only the queries at positions ``keep``."""
        qids = [self.query_ids[i] for i in keep]
        return BeirSet(self.doc_ids, self.doc_texts, qids, [self.query_texts[i] for i in keep],
                       {q: self.qrels[q] for q in qids})


def _read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(path, f"line {line_no}", f"not JSON ({err.msg})") from None
            missing = [key for key in required if key not in row]
            if missing:
                raise InputError(path, f"line {line_no}", f"missing field {missing[0]!r}")
            rows.append(row | {"_line": line_no})
    return rows


def _read_qrels(path: Path) -> list[tuple[int, str, str, int]]:
    if path.suffix == ".jsonl":
        return [(r["_line"], str(r["query-id"]), str(r["corpus-id"]), int(r.get("score", 1)))
                for r in _read_jsonl(path, ("query-id", "corpus-id"))]
    out = []
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").split("\t")
            if line_no == 1 and parts[0] == "query-id":
                continue  # BEIR's header row
            if not line.strip():
                continue
            if len(parts) != 3:
                raise InputError(path, f"line {line_no}", "expected 3 tab-separated fields "
                                 "(query-id, corpus-id, score)")
            try:
                out.append((line_no, parts[0], parts[1], int(float(parts[2]))))
            except ValueError:
                raise InputError(path, f"line {line_no}", f"score {parts[2]!r} is not a number") from None
    return out


def _unique_ids(rows: list[dict], path: Path) -> list[str]:
    seen: set[str] = set()
    for row in rows:
        key = str(row["_id"])
        if key in seen:
            raise InputError(path, f"line {row['_line']}", f"duplicate _id {key!r}")
        seen.add(key)
    return [str(row["_id"]) for row in rows]


def load_beir(folder: str | Path, allow_unjudged: bool = False) -> BeirSet:
    """Read a BEIR folder; bad input raises :class:`InputError` naming the file and record.

    Queries without any relevant document are an error (their recall is undefined); with
    ``allow_unjudged`` they are dropped instead, e.g. for BEIR folders whose queries.jsonl also
    holds the train split.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "folder", "not a directory")
    corpus_path, queries_path = folder / "corpus.jsonl", folder / "queries.jsonl"
    for path in (corpus_path, queries_path):
        if not path.exists():
            raise InputError(path, "file", "missing (a BEIR folder needs corpus.jsonl and queries.jsonl)")
    qrels_path = next((folder / name for name in QREL_FILES if (folder / name).exists()), None)
    if qrels_path is None:
        raise InputError(folder / "qrels.jsonl", "file", f"missing (looked for {', '.join(QREL_FILES)})")

    docs = _read_jsonl(corpus_path, ("_id", "text"))
    doc_ids = _unique_ids(docs, corpus_path)
    # BEIR convention: the title, when present, is part of the document's text.
    doc_texts = [f"{d.get('title') or ''} {d['text']}".strip() for d in docs]
    queries = _read_jsonl(queries_path, ("_id", "text"))
    query_ids = _unique_ids(queries, queries_path)

    known_docs, known_queries = set(doc_ids), set(query_ids)
    qrels: dict[str, dict[str, int]] = {}
    for line_no, qid, did, score in _read_qrels(qrels_path):
        if qid not in known_queries:
            raise InputError(qrels_path, f"line {line_no}", f"query-id {qid!r} is not in queries.jsonl")
        if did not in known_docs:
            raise InputError(qrels_path, f"line {line_no}", f"corpus-id {did!r} is not in corpus.jsonl")
        qrels.setdefault(qid, {})[did] = score

    keep = []
    for i, (qid, row) in enumerate(zip(query_ids, queries)):
        if any(score > 0 for score in qrels.get(qid, {}).values()):
            keep.append(i)
        elif not allow_unjudged:
            raise InputError(qrels_path, f"query {qid!r}",
                             f"no relevant document (queries.jsonl line {row['_line']})")
    return BeirSet(doc_ids, doc_texts, [query_ids[i] for i in keep],
                   [queries[i]["text"] for i in keep], {query_ids[i]: qrels[query_ids[i]] for i in keep})


def write_beir(data: BeirSet, folder: str | Path) -> None:
    """Write ``corpus.jsonl``, ``queries.jsonl`` and ``qrels.jsonl`` (LIMIT's layout), atomically."""
    with atomic_path(folder) as tmp:
        tmp.mkdir()
        with (tmp / "corpus.jsonl").open("w", encoding="utf-8") as fh:
            for did, text in zip(data.doc_ids, data.doc_texts):
                fh.write(json.dumps({"_id": did, "title": "", "text": text}) + "\n")
        with (tmp / "queries.jsonl").open("w", encoding="utf-8") as fh:
            for qid, text in zip(data.query_ids, data.query_texts):
                fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
        with (tmp / "qrels.jsonl").open("w", encoding="utf-8") as fh:
            for qid in data.query_ids:
                for did, score in data.qrels[qid].items():
                    fh.write(json.dumps({"query-id": qid, "corpus-id": did, "score": score}) + "\n")
