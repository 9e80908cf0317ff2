"""Stage ``annotate``: asymmetric-information chain-of-thought for the problems' train split.

A teacher that knows the answer and the evidence writes a step-wise rationale; it is restructured
into ``{steps, conclusion}`` (bounded re-asks when it does not parse); a solver that sees only the
question and the steps must reach the answer (reverse verification). Verified traces become SFT
chats and BiomniGEM's multi-trace variants; the others are kept as negatives or rejections with
their reasons. Every train problem also becomes an answer-only chat (``sft_direct.parquet``, the
answer-only system prompt), so SFT teaches the answer itself as well as the path to it. Every teacher and solver call goes through a persistent store
(``annotate.cache_dir``), so a rerun after a crash sends only the calls that never completed.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from tasks.annotate import steps
from tasks.common import schemas
from tasks.annotate.call_cache import CallCache
from tasks.annotate.evidence import Knowledge
from tasks.common.errors import InputError, run_stage
from tasks.common.params import Annotate, Verifiers, load_params
from tasks.common.prompts import load_prompts
from tasks.annotate.rationales import EvidenceChecker, OfflineTeacher
from tasks.common.storage import atomic_path, read_table, write_csv, write_json, write_table
from tasks.annotate.teachers import CachedClient, InProcessBackend, OpenAIBackend
from tasks.common.tracking import stage_run

PROBLEMS = Path("data/problems/problems.parquet")
CORPUS = Path("data/corpus")
OUT = Path("data/annotate")
REPORTS = Path("reports/annotate")


def make_teacher(p: Annotate, kb: Knowledge, generation):
    kinds = {
        "offline": lambda: OfflineTeacher(kb, style=p.trace_style),
        "openai": lambda: OpenAIBackend(p.endpoint, p.model, p.api_key_env, p.concurrency, p.timeout_s,
                                        p.max_retries, p.backoff_s),
        "vllm": lambda: InProcessBackend(p.model, generation, engine="vllm"),
    }
    return kinds[p.teacher]()


def make_solver(p: Annotate, teacher, tag: str):
    if p.solver == "checker":
        return EvidenceChecker(tag)
    if p.solver == "teacher":
        if p.teacher == "offline":  # the offline teacher writes rationales; it cannot answer questions
            raise InputError("params.yaml", "annotate.solver",
                             "solver=teacher needs an LLM teacher (openai or vllm); use checker with offline")
        return teacher
    if not (p.solver_endpoint and p.solver_model):
        raise InputError("params.yaml", "annotate.solver", "solver=openai needs solver_endpoint and solver_model")
    return OpenAIBackend(p.solver_endpoint, p.solver_model, p.solver_api_key_env, p.concurrency,
                         p.timeout_s, p.max_retries, p.backoff_s)


retrieve_passages = task(steps.retrieve_passages, cache_policy=NO_CACHE)
teach = task(steps.teach, cache_policy=NO_CACHE)
verify = task(steps.verify, cache_policy=NO_CACHE)


def accept_plot(per_family: dict) -> tuple[pd.DataFrame, plt.Figure]:
    table = pd.DataFrame([{"family": f, "accept_rate": m["accept_rate"], "problems": m["problems"]}
                          for f, m in per_family.items()])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(table["family"], table["accept_rate"])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accept rate")
    ax.set_title("Annotation: verified traces per family")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return table, fig


@flow(name="annotate")
def annotate_flow() -> None:
    params = load_params(require=("annotate",))
    p = params.annotate
    tag = Verifiers.answer_tag_of(params)  # the answer contract's tag: SFT chats teach what GRPO rewards
    prompts = load_prompts(p.prompts_dir)
    with stage_run("annotate", params) as run:
        problems = read_table(PROBLEMS, schemas.Problems)
        todo = steps.select_problems(problems[problems["family"] != steps.INSTRUCTION], p.max_problems_per_family)
        instruction = steps.instruction_rows(problems, prompts, tag, p.trace_style)
        direct = steps.direct_rows(problems, prompts, tag)

        passages = {}
        if p.rag.enabled:
            documents = read_table(CORPUS / "documents.parquet", schemas.Documents)
            passages = retrieve_passages(todo, documents, p.rag.retriever, p.rag.embedder, p.rag.k,
                                         p.rag.max_chars)

        cache = CallCache(Path(p.cache_dir) / "calls.sqlite")
        kb = Knowledge(CORPUS)
        teacher = CachedClient(make_teacher(p, kb, params.generation), cache)
        solver = CachedClient(make_solver(p, teacher.backend, tag), cache)
        taught = teach(todo, teacher, prompts, passages, p)
        verdicts = verify(todo, taught, solver, prompts, p, tag)

        teacher_name = f"{p.teacher}:{teacher.backend.model}"
        traces = steps.trace_rows(todo, taught, verdicts, teacher_name,
                                  p.variants.model_dump(), params.base.seed)
        sft = steps.sft_rows(todo, taught, verdicts, prompts, tag)
        metrics = steps.report(todo, taught, verdicts, [("teacher", teacher.stats.as_dict()),
                                                        ("solver", solver.stats.as_dict())])
        metrics["sft_examples"] = len(sft)
        metrics["sft_instruction_examples"] = len(instruction)
        metrics["sft_direct_examples"] = len(direct)
        metrics["traces_per_variant"] = traces["variant"].value_counts().sort_index().to_dict()

        with atomic_path(OUT) as out:
            out.mkdir()
            write_table(traces, out / "traces.parquet", schemas.Traces)
            write_table(sft, out / "sft.parquet", schemas.SftChats)
            write_table(instruction, out / "sft_instruction.parquet", schemas.SftChats)
            write_table(direct, out / "sft_direct.parquet", schemas.SftChats)

        rates, fig = accept_plot(metrics["per_family"])
        REPORTS.mkdir(parents=True, exist_ok=True)
        write_csv(rates, REPORTS / "accept_rates.csv")
        write_json(metrics, REPORTS / "metrics.json")
        summary = {"rows": len(traces), "accept_rate": metrics["accept_rate"]}
        write_json(summary, REPORTS / "summary.json")
        run.log_metrics(metrics)
        run.publish(summary)
        run.log_figure(fig, "annotate_accept_rate.png")
        plt.close(fig)
        run.log_table(traces, "traces", rows=20)
        run.log_table(sft, "sft", rows=5)
        cache.close()


if __name__ == "__main__":
    run_stage(annotate_flow)
