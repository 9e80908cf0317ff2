"""The pretrain flow end to end on stand-in inputs (schema-valid corpus and textify tables)."""
import json

import pandas as pd
import pytest
import yaml

from tasks.common import schemas
from tasks.lm.modeling import load_model
from tasks.common.storage import write_table
from tests.conftest import PROJECT, toy_texts


def write_inputs(tmp_path, **smoke) -> None:
    """params.yaml (a 1-layer smoke model, 6 steps of 4 x 32 tokens), corpus, cells and problems."""
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params = {"base": {"seed": 0, "profile": "smoke"}, "pretrain": raw["pretrain"]}
    params["pretrain"]["profiles"]["smoke"].update(
        model={"vocab_size": 600, "layers": 1, "hidden": 64, "heads": 2, "kv_heads": 1,
               "intermediate": 64, "max_positions": 256},
        heldout_fraction=0.1, block_size=32, token_budget=32 * 4 * 6, logging_steps=2,
        eval_steps=3, save_steps=3, **smoke)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    texts = toy_texts(200)
    docs = pd.DataFrame({"doc_id": [f"d{i}" for i in range(200)], "source": "toy", "title": "t",
                         "text": texts, "n_words": [len(t.split()) for t in texts]})
    write_table(docs, tmp_path / "data/corpus/documents.parquet", schemas.Documents)
    cells = pd.DataFrame({"cell_id": [f"c{i}" for i in range(30)], "label": "T cell",
                          "n_genes": 3, "total_counts": 9.0,
                          "cell_sentence": ["<cell>GNLY, NKG7, PRF1, GZMB</cell>"]
                          + ["<cell>CD3D, CD8A, IL7R</cell>"] * 29})
    write_table(cells, tmp_path / "data/textify/cells.parquet", schemas.CellSentences)
    # a test problem shows cell c0 (its top genes): c0 must not be pretrained on
    from tests.evaluate_fixtures import problems
    table = problems()
    first = table.index[(table["split"] == "test") & (table["family"] == "cell_type")][0]
    table.loc[first, "prompt"] = "<cell>GNLY, NKG7, PRF1</cell> Which cell type?"
    table.at[first, "source_ids"] = ["c0"]
    write_table(table, tmp_path / "data/problems/problems.parquet", schemas.Problems)


@pytest.mark.slow
def test_pretrain_flow_writes_models_reports_and_curves(mlflow_uri, tmp_path):
    write_inputs(tmp_path, drills={"token_budget": 0})  # the smoke profile's drill phase off
    from flows.pretrain import pretrain_flow

    pretrain_flow()

    metrics = json.loads((tmp_path / "reports/pretrain/metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["tokens_trained"] == 32 * 4 * 6
    assert metrics["textify_tables_found"] == ["cells"]
    # c0 by its id; toy documents quoting a test prompt's genes ("CD3D, MS4A1") by their text
    dropped = metrics["documents"]["dropped_test_inputs"]
    assert dropped["by_id"] == {"textify:cells": 1} and set(dropped["by_text"]) <= {"corpus:toy"}
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    assert metrics["perplexity_before"] > metrics["perplexity_after"] > 1
    curve = pd.read_csv(tmp_path / "reports/pretrain/loss.csv")
    assert curve["step"].tolist() == [2, 4, 6]
    evals = pd.read_csv(tmp_path / "reports/pretrain/eval_loss.csv")
    assert evals["step"].iloc[0] == 0 and evals["step"].iloc[-1] == 6
    assert load_model(tmp_path / "models/pretrain").config.num_hidden_layers == 1
    assert not (tmp_path / "models/pretrain/training_args.bin").exists()
    assert (tmp_path / "models/base/tokenizer.json").exists()
    assert list((tmp_path / "scratch/pretrain").iterdir()) == []  # removed once the model is saved
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_uri)
    run = client.search_runs(client.get_experiment_by_name("omicsforge").experiment_id)[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "pretrain/train/loss")] == [2, 4, 6]
    assert "pretrain/train/eval_perplexity" in run.data.metrics


@pytest.mark.slow
def test_drill_phase_continues_the_model_and_measures_the_lookup_before_and_after(mlflow_uri, tmp_path):
    write_inputs(tmp_path, drills={"token_budget": 32 * 4 * 4, "probe_drills": 5})
    from flows.pretrain import pretrain_flow

    pretrain_flow()

    metrics = json.loads((tmp_path / "reports/pretrain/metrics.json").read_text())
    drilled = metrics["drills"]
    assert metrics["steps"] == 6 and drilled["steps"] == 4 and drilled["tokens_trained"] == 32 * 4 * 4
    assert drilled["copy_before"]["names"] == drilled["copy_after"]["names"] == 5 * 4
    # the corpus phase's model is where the drill phase starts
    assert drilled["eval_loss_before"] == pytest.approx(metrics["eval_loss_after"], rel=1e-5)
    summary = json.loads((tmp_path / "reports/pretrain/summary.json").read_text())
    assert summary["eval_loss"] == round(drilled["eval_loss_after"], 4)
    assert summary["drill_copy_whole"] == drilled["copy_after"]["whole"]
    assert pd.read_csv(tmp_path / "reports/pretrain/loss.csv")["step"].tolist() == [2, 4, 6, 8, 10]
    assert pd.read_csv(tmp_path / "reports/pretrain/eval_loss.csv")["step"].iloc[-1] == 10
    assert list((tmp_path / "scratch/pretrain").iterdir()) == []
    from mlflow import MlflowClient

    client = MlflowClient(mlflow_uri)
    run = client.search_runs(client.get_experiment_by_name("omicsforge").experiment_id)[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "pretrain/drills/loss")] == [2, 4]
    assert run.data.metrics["pretrain/drills/copy_after/names"] == 20
