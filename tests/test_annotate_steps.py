import json

import pandas as pd
import pytest

from annotate_fixtures import problems, write_corpus
from fault_server import FaultServer

from tasks.annotate import steps
from tasks.annotate.call_cache import CallCache
from tasks.common.params import Annotate
from tasks.common.prompts import load_prompts
from tasks.annotate.teachers import CachedClient, OpenAIBackend

GOOD = json.dumps({"steps": ["Reading the cell sentence from the top.",
                             "Marker CD79A of B cell is at rank 1 in the cell sentence."],
                   "conclusion": "Therefore the answer is B cell."})


def _one(pid="cell-ok-b") -> pd.DataFrame:
    return problems().query("id == @pid").reset_index(drop=True)


def test_unparsable_replies_are_re_asked_a_bounded_number_of_times(tmp_path):
    script = [("ok", "not json"), ("ok", '{"steps": ["It is a B cell.", "x"], "conclusion": "c"}'), ("ok", GOOD)]
    with FaultServer(script) as server:
        client = CachedClient(OpenAIBackend(server.url, "m", backoff_s=0.01), CallCache(tmp_path / "c.sqlite"))
        taught = steps.teach(_one(), client, load_prompts(None), {}, Annotate(max_parse_retries=2))
        attempts = [r["body"]["messages"] for r in server.requests]
    assert taught["cell-ok-b"]["trace"].steps[1].startswith("Marker CD79A")
    assert taught["cell-ok-b"]["tries"] == 3 and len(attempts) == 3
    assert "attempt" not in server.requests[0]["body"]  # a cache-key field, never sent

    with FaultServer([("ok", "not json")] * 5) as server:
        client = CachedClient(OpenAIBackend(server.url, "m"), CallCache(tmp_path / "d.sqlite"))
        taught = steps.teach(_one(), client, load_prompts(None), {}, Annotate(max_parse_retries=1))
    assert taught["cell-ok-b"] == {"trace": None, "reason": "bad_json", "tries": 2} and len(server.requests) == 2


@pytest.mark.parametrize("style", ["short", "full"])
def test_a_short_trace_states_the_answer_once_a_full_one_keeps_the_conclusion(tmp_path, style):
    with FaultServer([("ok", GOOD)]) as server:
        client = CachedClient(OpenAIBackend(server.url, "m"), CallCache(tmp_path / "c.sqlite"))
        taught = steps.teach(_one(), client, load_prompts(None), {}, Annotate(trace_style=style))
    verified = {"cell-ok-b": {"status": "verified"}}
    reply = steps.sft_rows(_one(), taught, verified, load_prompts(None), "answer")["messages"][0][-1]["content"]
    body = reply.split("</think>")[0]
    assert reply.endswith("</think>\n<answer> B cell</answer>")
    assert ("Therefore the answer is B cell." in body) == (style == "full")
    assert "rank 1 in the cell sentence." in body


def test_llm_solver_sees_no_answer_and_its_answer_is_compared(tmp_path):
    taught = {"cell-ok-b": {"trace": steps.an.Trace(["Read it.", "CD79A is near the top."], "So B cell."),
                            "reason": None, "tries": 1}}
    for said, status in (("<answer>A</answer>", "verified"), ("<answer>T cell</answer>", "disagreed"),
                         ("I cannot tell.", "disagreed")):
        with FaultServer([("ok", said)]) as server:
            client = CachedClient(OpenAIBackend(server.url, "solver"), CallCache(tmp_path / f"{status}{len(said)}.sqlite"))
            verdict = steps.verify(_one(), taught, client, load_prompts(None), Annotate(), "answer")["cell-ok-b"]
            sent = server.requests[0]["body"]["messages"][0]["content"]
        assert verdict["status"] == status
        assert "So B cell." not in sent and "1. Read it.\n2. CD79A is near the top." in sent
    assert verdict["reason"] == "solver_no_answer"


@pytest.mark.parametrize("retriever", ["bm25", "hybrid"])
def test_retrieved_passages_reach_the_teacher_prompt(tmp_path, retriever):
    documents = pd.read_parquet(write_corpus(tmp_path / "corpus") / "documents.parquet")
    todo = _one("tf-gata")
    passages = steps.retrieve_passages(todo, documents, retriever, "all-MiniLM-L6-v2", k=1, max_chars=40)
    assert passages == {"tf-gata": ["GATA1: GATA1 binds AGATAA sites in eryth"]}
    with FaultServer([("ok", GOOD)]) as server:
        client = CachedClient(OpenAIBackend(server.url, "m"), CallCache(tmp_path / "c.sqlite"))
        steps.teach(todo, client, load_prompts(None), passages, Annotate())
        user = server.requests[0]["body"]["messages"][1]["content"]
    assert "Background passages" in user and "[1] GATA1: GATA1 binds" in user


def test_select_keeps_train_only_and_caps_per_family():
    picked = steps.select_problems(problems(), cap=1)
    assert set(picked["split"]) == {"train"} and picked["family"].is_unique
