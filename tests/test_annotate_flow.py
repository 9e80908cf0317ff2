"""The annotate flow end to end on hand-made, schema-valid problems with the offline teacher."""
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from annotate_fixtures import problems, write_corpus

from tasks.common import schemas
from tasks.common.storage import read_table, write_table

PROJECT = Path(__file__).resolve().parent.parent


def _setup(root: Path, answer_tag: str | None = None, **annotate) -> None:
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["base"]["profile"] = "smoke"
    params["annotate"].update(annotate)
    if answer_tag is not None:  # the answer contract's tag lives in the verifiers section
        params["verifiers"]["answer_tag"] = answer_tag
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_corpus(root / "data" / "corpus")
    write_table(problems(), root / "data" / "problems" / "problems.parquet", schemas.Problems)


@pytest.mark.slow
def test_flow_writes_traces_sft_and_a_report_with_real_rejections(mlflow_uri, tmp_path):
    from flows.annotate import annotate_flow

    # the exact counts below are those of the full trace style (a short trace of one fact can need
    # a re-ask: tests/test_rationales.py covers the short style)
    _setup(tmp_path, answer_tag="solution", trace_style="full")
    annotate_flow()

    traces = read_table("data/annotate/traces.parquet", schemas.Traces)
    sft = read_table("data/annotate/sft.parquet", schemas.SftChats)
    instruction = read_table("data/annotate/sft_instruction.parquet", schemas.SftChats)
    metrics = json.loads(Path("reports/annotate/metrics.json").read_text())

    # test-split problems are never annotated
    assert not {"cell-test", "ia-test"} & (set(traces["problem_id"]) | set(sft["id"]) | set(instruction["id"]))
    disagreed = set(traces.loc[traces["status"] == "disagreed", "problem_id"])
    assert disagreed == {"cell-bad", "pert-bad", "rd-bad"}
    assert (traces.loc[traces["status"] == "disagreed", "reward"] == -1.0).all()
    gold = traces[traces["variant"] == "gold"]
    assert set(gold["status"]) == {"verified"} and (gold["reward"] == 1.0).all()
    assert set(traces["variant"]) == {"gold", "short", "long", "redundant", "no_reason", "negative"}

    assert set(sft["id"]) == set(gold["problem_id"]) and "cell-bad" not in set(sft["id"])
    chat = sft.set_index("id").loc["cell-ok-b", "messages"]
    assert "<solution>" in chat[0]["content"] and "text of the correct option inside <solution>" in chat[1]["content"]
    assert chat[2]["content"].startswith("<think>\n1. ") and chat[2]["content"].endswith("<solution> B cell</solution>")
    assert instruction["id"].tolist() == ["ia-train"]
    assert instruction["messages"][0][2]["content"].endswith("<solution> 10</solution>")

    fam = metrics["per_family"]
    assert fam["cell_type"] == {"problems": 4, "verified": 3, "disagreed": 1, "rejected": 0, "parse_retries": 0,
                                "accept_rate": 0.75, "agreement_rate": 0.75}
    assert fam["perturb_de"]["accept_rate"] == round(2 / 3, 4)
    assert metrics["rejection_reasons"] == {"solver_disagreed": 3}
    assert metrics["calls"]["teacher"]["sent"] == metrics["problems"] == 16
    assert metrics["calls"]["solver"]["sent"] == 16
    rates = pd.read_csv("reports/annotate/accept_rates.csv")
    assert list(rates.columns) == ["family", "accept_rate", "problems"] and len(rates) == 8

    # a second run is served entirely from the call store
    annotate_flow()
    again = json.loads(Path("reports/annotate/metrics.json").read_text())
    assert again["calls"]["teacher"]["sent"] == 0 and again["calls"]["teacher"]["cache_hits"] == 16
    assert again["per_family"] == metrics["per_family"]


def test_bad_problems_table_is_a_one_line_error_and_keeps_old_outputs(mlflow_uri, tmp_path):
    from flows.annotate import annotate_flow
    from tasks.common.errors import InputError

    _setup(tmp_path)
    bad = problems()
    bad.loc[0, "category"] = "cells"
    bad.to_parquet("data/problems/problems.parquet")
    (tmp_path / "data" / "annotate").mkdir(parents=True)
    (tmp_path / "data" / "annotate" / "old.txt").write_text("kept")
    with pytest.raises(InputError, match="problems.parquet"):
        annotate_flow.fn()
    assert (tmp_path / "data" / "annotate" / "old.txt").read_text() == "kept"
    shutil.rmtree(tmp_path / "data")
