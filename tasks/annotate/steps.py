"""The annotate stage's steps: teach (with bounded re-asks), verify in reverse, and build the tables.

>>> rows = select_problems(_demo(), cap=1)
>>> rows["id"].tolist()
['p1', 'p3']
"""
from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence

import pandas as pd

from tasks.annotate import traces as an
from tasks.common import prompts as pr
from tasks.annotate.derivations import derive
from tasks.common.answers import extract_answer, judge
from tasks.common.errors import InputError
from tasks.common.params import Annotate
from tasks.annotate.teachers import CachedClient, Call, Reply

INSTRUCTION = "instruction_alignment"


def _demo() -> pd.DataFrame:
    return pd.DataFrame({"id": ["p1", "p2", "p3", "p4"], "family": ["a", "a", "b", "b"],
                         "split": ["train", "train", "train", "test"]})


def select_problems(problems: pd.DataFrame, cap: int | None) -> pd.DataFrame:
    """Train problems (test problems stay untouched for evaluation), at most ``cap`` per family."""
    train = problems[problems["split"] == "train"]
    if cap is not None:
        train = train.groupby("family", sort=False, group_keys=False).head(cap)
    return train.reset_index(drop=True)


def _record(row: pd.Series) -> dict:
    rec = row.to_dict()
    rec["choices"] = [str(c) for c in rec.get("choices", [])]
    return rec


def teach(problems: pd.DataFrame, client: CachedClient, prompts: dict[str, str],
          passages: dict[str, list[str]], p: Annotate) -> dict[str, dict]:
    """Ask the teacher for a rationale per problem; re-ask (attempt + 1, a new cache key) while the
    reply does not parse, up to ``max_parse_retries`` times. Returns id -> {trace, reason, tries}."""
    results: dict[str, dict] = {}
    pending = [_record(r) for _, r in problems.iterrows()]
    for attempt in range(p.max_parse_retries + 1):
        if not pending:
            break
        calls = []
        for rec in pending:
            messages = pr.teacher_messages(prompts, rec["category"], rec["prompt"], rec["answer"],
                                           rec["evidence"], passages.get(rec["id"], []), p.trace_style)
            sampling = {"temperature": p.temperature, "max_tokens": p.max_tokens, "attempt": attempt}
            calls.append(Call(messages, sampling, rec))
        replies = client.complete(calls)
        retry = []
        for rec, reply in zip(pending, replies):
            if reply.error is not None:  # transport failure: retried by the backend, not re-asked
                results[rec["id"]] = {"trace": None, "reason": f"teacher_error: {reply.error}", "tries": attempt + 1}
                continue
            trace, reason = an.parse_trace(reply.text, rec["answer"], rec["answer_type"],
                                           rec["choices"], p.min_steps)
            if trace is not None:
                trace = an.as_trained(trace, p.trace_style)
            results[rec["id"]] = {"trace": trace, "reason": reason, "tries": attempt + 1}
            if trace is None:
                retry.append(rec)
        pending = retry
    return results


def verdict(reply: Reply, answer: str, answer_type: str, choices: list[str], tag: str) -> dict:
    """The reverse-verification filter on one solver reply: verified only when the answer contract
    (``tasks.common.answers.judge``, the same rule as GRPO's correctness reward and evaluate's
    scorer) says the reply gives the answer."""
    said = extract_answer(reply.text or "", tag)
    if reply.error is not None:
        status, reason = "rejected", f"solver_error: {reply.error}"
    elif said is None:
        status, reason = "disagreed", "solver_no_answer"
    elif judge(reply.text, answer, answer_type, choices, tag):
        status, reason = "verified", None
    else:
        status, reason = "disagreed", "solver_disagreed"
    return {"status": status, "reason": reason, "solver_answer": said}


def verify(problems: pd.DataFrame, taught: dict[str, dict], client: CachedClient,
           prompts: dict[str, str], p: Annotate, tag: str) -> dict[str, dict]:
    """Reverse verification: the solver sees the question and steps only and must reach the answer
    inside the answer ``tag`` (``verifiers.answer_tag``)."""
    recs = [_record(r) for _, r in problems.iterrows() if taught[r["id"]]["trace"] is not None]
    calls = []
    for rec in recs:
        steps = taught[rec["id"]]["trace"].steps
        messages = pr.solver_messages(prompts, rec["prompt"], steps, rec["answer_type"], tag,
                                       rec["choices"])
        context = {k: rec[k] for k in ("family", "answer_type", "choices")} | {"steps": steps}
        calls.append(Call(messages, {"temperature": 0.0, "max_tokens": p.solver_max_tokens}, context))
    return {rec["id"]: verdict(reply, rec["answer"], rec["answer_type"], rec["choices"], tag)
            for rec, reply in zip(recs, client.complete(calls))}


def trace_rows(problems: pd.DataFrame, taught: dict, verdicts: dict, teacher: str,
               variant_cfg: dict, seed: int) -> pd.DataFrame:
    """One row per trace: variants of verified traces, disagreeing traces as negatives, and one
    row per rejected problem with its reason."""
    recs = [_record(r) for _, r in problems.iterrows()]
    verified = [r for r in recs if verdicts.get(r["id"], {}).get("status") == "verified"]
    pools: dict[str, list[str]] = {}
    answers: dict[str, list[str]] = {}
    for r in verified:
        pools.setdefault(r["family"], []).extend(taught[r["id"]]["trace"].steps[1:])
    for r in recs:
        answers.setdefault(r["family"], []).append(r["answer"])
    rows = []
    for r in recs:
        base = {"problem_id": r["id"], "family": r["family"], "gold_answer": r["answer"], "teacher": teacher}
        t, v = taught[r["id"]], verdicts.get(r["id"])
        if t["trace"] is None or v["status"] == "rejected":
            reason = t["reason"] if t["trace"] is None else v["reason"]
            rows.append(base | {"variant": "gold", "steps": [], "conclusion": "", "answer": "",
                                "reward": math.nan, "status": "rejected", "rejection_reason": reason})
        elif v["status"] == "disagreed":
            rows.append(base | {"variant": "negative", "steps": t["trace"].steps,
                                "conclusion": t["trace"].conclusion,
                                "answer": v["solver_answer"] or "", "reward": variant_cfg["negative"]["reward"],
                                "status": "disagreed", "rejection_reason": v["reason"]})
        else:
            pool = [s for s in pools.get(r["family"], []) if s not in t["trace"].steps]
            for var in an.variants(r["id"], t["trace"], r["answer"], r["answer_type"], r["choices"],
                                   pool, answers[r["family"]], variant_cfg, seed):
                rows.append(base | var | {"status": "verified" if var["variant"] == "gold" else "derived",
                                          "rejection_reason": None})
    return pd.DataFrame(rows)


def sft_rows(problems: pd.DataFrame, taught: dict, verdicts: dict, prompts: dict[str, str],
             tag: str) -> pd.DataFrame:
    """Chat SFT data from verified gold traces (train split only)."""
    rows = []
    for _, row in problems.iterrows():
        if verdicts.get(row["id"], {}).get("status") != "verified":
            continue
        rec, trace = _record(row), taught[row["id"]]["trace"]
        rows.append({"id": rec["id"], "family": rec["family"], "split": "train",
                     "messages": pr.sft_messages(rec, trace.steps, trace.conclusion, rec["answer"], prompts, tag)})
    return pd.DataFrame(rows, columns=["id", "family", "split", "messages"])


def direct_rows(problems: pd.DataFrame, prompts: dict[str, str], tag: str) -> pd.DataFrame:
    """Answer-only SFT chats: every train problem with its gold answer under the answer-only system
    prompt (no reasoning to verify: the answer is the problem's own label)."""
    train = problems[problems["split"] == "train"]
    rows = [{"id": rec["id"], "family": rec["family"], "split": "train",
             "messages": pr.direct_messages(rec, rec["answer"], prompts, tag)}
            for rec in (_record(r) for _, r in train.iterrows())]
    return pd.DataFrame(rows, columns=["id", "family", "split", "messages"])


def instruction_rows(problems: pd.DataFrame, prompts: dict[str, str], tag: str,
                     style: str) -> pd.DataFrame:
    """Instruction-alignment SFT (train split): computed answers, so the assistant's reasoning is the
    computation itself (``tasks.annotate.derivations``), true by construction and never sent to a
    teacher; rendered in the trace style (``traces.as_trained``) as the teacher's traces are."""
    rows = []
    for _, row in problems[(problems["family"] == INSTRUCTION) & (problems["split"] == "train")].iterrows():
        rec = _record(row)
        try:
            steps = derive(json.loads(rec["evidence"] or "{}"), rec["answer"])
        except (KeyError, TypeError, ValueError) as err:
            raise InputError("data/problems/problems.parquet", f"problem {rec['id']!r}",
                             f"instruction_alignment evidence: {err}") from None
        trace = an.as_trained(an.Trace(steps, f"So the answer is {rec['answer']}."), style)
        rows.append({"id": rec["id"], "family": rec["family"], "split": "train",
                     "messages": pr.sft_messages(rec, trace.steps, trace.conclusion, rec["answer"],
                                                 prompts, tag)})
    return pd.DataFrame(rows, columns=["id", "family", "split", "messages"])


def report(problems: pd.DataFrame, taught: dict, verdicts: dict, stats: Sequence[tuple[str, dict]]) -> dict:
    """Accept rate per family, rejection reasons, tries, calls, tokens and cache hits."""
    fam: dict[str, Counter] = {}
    reasons: Counter = Counter()
    for _, row in problems.iterrows():
        c = fam.setdefault(row["family"], Counter())
        c["problems"] += 1
        t, v = taught[row["id"]], verdicts.get(row["id"])
        status = "rejected" if t["trace"] is None else v["status"]
        c[status] += 1
        reason = t["reason"] if t["trace"] is None else v["reason"]
        if reason:
            reasons[reason.split(":")[0] if reason.startswith(("teacher_error", "solver_error")) else reason] += 1
        c["parse_retries"] += t["tries"] - 1
    per_family = {f: {"problems": c["problems"], "verified": c["verified"], "disagreed": c["disagreed"],
                      "rejected": c["rejected"], "parse_retries": c["parse_retries"],
                      "accept_rate": round(c["verified"] / c["problems"], 4),
                      "agreement_rate": round(c["verified"] / max(1, c["verified"] + c["disagreed"]), 4)}
                  for f, c in sorted(fam.items())}
    total = sum(c["problems"] for c in fam.values())
    return {"problems": total,
            "accept_rate": round(sum(c["verified"] for c in fam.values()) / max(1, total), 4),
            "per_family": per_family, "rejection_reasons": dict(sorted(reasons.items())),
            "calls": {name: s for name, s in stats}}


def retrieve_passages(problems: pd.DataFrame, documents: pd.DataFrame, retriever: str, embedder: str,
                      k: int, max_chars: int) -> dict[str, list[str]]:
    """Top-k corpus passages per problem for the teacher's prompt (tasks/limit/retrieval.py retrievers).

    The query is the question without its omics data (gene lists and sequences retrieve nothing)
    plus the answer: the teacher knows the answer, and passages about it are what it can cite.
    """
    import re

    from tasks.limit.retrieval import BM25, Dense, Encoder, Hybrid

    build = {"bm25": lambda: BM25(),
             "dense": lambda: Dense(Encoder(embedder)),
             "hybrid": lambda: Hybrid([BM25(), Dense(Encoder(embedder))])}
    index = build[retriever]()
    texts = (documents["title"] + ": " + documents["text"]).tolist()
    index.index(texts)
    strip = re.compile(r"<(cell|dna|protein)>.*?</\1>", re.S)
    queries = [f"{strip.sub(' ', q)} {a}" for q, a in zip(problems["prompt"], problems["answer"])]
    ids, _ = index.search(queries, k)
    return {pid: [texts[j][:max_chars] for j in row] for pid, row in zip(problems["id"], ids)}
