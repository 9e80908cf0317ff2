"""The evaluate flow end to end on a stand-in problem set and tiny checkpoints, then promote."""
import json
import shutil

import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from tasks.common import schemas
from tasks.common.storage import write_table
from tests.conftest import PROJECT
from tests.evaluate_fixtures import problems


def _project(tmp_path, tiny_base, **smoke) -> None:
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params = {"base": {"seed": 0, "profile": "smoke"}, "evaluate": raw["evaluate"],
              "registry": raw["registry"], "generation": {"engine": "transformers"}}
    params["evaluate"]["checkpoints"] = {"base": "models/base", "sft": "models/sft"}
    params["evaluate"]["profiles"]["smoke"].update(max_problems_per_family=4, max_new_tokens=12, **smoke)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for name in ("base", "sft"):
        shutil.copytree(tiny_base[0], tmp_path / "models" / name)
    write_table(problems(), tmp_path / "data/problems/problems.parquet", schemas.Problems)
    (tmp_path / "reports/problems").mkdir(parents=True)
    (tmp_path / "reports/problems/baselines.json").write_text(json.dumps({"families": {}}))


@pytest.mark.slow
def test_evaluate_flow_table_predictions_registry_and_promote(mlflow_uri, tiny_base, tmp_path):
    _project(tmp_path, tiny_base)
    # as grpo leaves it: sft is compared with base on the families it names as well
    (tmp_path / "models/sft/trained_families.json").write_text(json.dumps({"families": ["cell_type", "perturb_de"]}))

    from flows.evaluate import evaluate_flow
    from flows.promote import promote_flow

    evaluate_flow()

    metrics = json.loads((tmp_path / "reports/evaluate/metrics.json").read_text())
    assert list(metrics["checkpoints"]) == ["base", "sft"]
    sft = metrics["checkpoints"]["sft"]
    assert set(sft["families"]) == {"cell_type", "rare_disease", "causal_gene", "perturb_de", "perturb_dir"}
    assert 0 <= sft["mean_accuracy"] <= 1 and 0 <= sft["format_rate"] <= 1
    assert set(sft["perturbqa"]) == {"perturb_de", "perturb_dir"}
    assert set(sft["biomni"]) == {"rare_disease_diagnosis", "patient_gene_detection"}
    assert metrics["registered"]["checkpoint"] == "sft" and metrics["registered"]["dvc_md5"].endswith(".dir")
    assert metrics["registered"]["passed_over"] == []

    predictions = pd.read_parquet(tmp_path / "data/evaluate/predictions.parquet")
    assert len(predictions) == 2 * sum(metrics["problems"].values())
    perturb = predictions[predictions["family"].str.startswith("perturb")]
    assert perturb["p_positive"].between(0, 1).all()
    assert predictions.loc[~predictions["family"].str.startswith("perturb"), "p_positive"].isna().all()
    loglik = metrics["loglik"]
    assert list(loglik) == ["base", "sft"]
    assert loglik["sft"]["families"]["cell_type"]["scorable"] > 0
    assert 0 <= loglik["sft"]["mean_accuracy"] <= 1
    assert [e["family"] for e in metrics["paired"]["sft - base"]][-1] == "mean over families"
    assert {"chance", "majority"} <= set(metrics["fitted_baselines"])
    scored = pd.read_parquet(tmp_path / "data/evaluate/loglik.parquet")
    assert len(scored) == 2 * 2 * sum(metrics["problems"].values())  # checkpoints x modes
    assert set(scored["mode"]) == {"direct", "reasoned"} and metrics["loglik_mode"] == "direct"
    assert set(metrics["loglik_modes"]) == {"direct", "reasoned"}
    assert metrics["loglik"] == metrics["loglik_modes"]["direct"]["loglik"]
    assert 0 <= sft["reasoning_closed_rate"] <= 1 and sft["completions_at_limit"] >= 0
    table = (tmp_path / "reports/evaluate/table.md").read_text()
    assert "## Log-likelihood accuracy per family, reasoned" in table and "| sft - base | **mean over families**" in table
    assert "## Log-likelihood accuracy per family, direct" in table
    assert "| family | base | sft | majority | random | n |" in table
    trained = metrics["trained_families"]
    assert list(trained) == ["sft - base"] and set(trained["sft - base"]) == {"loglik", "generation"}
    for measure, row in trained["sft - base"].items():
        assert row["families"] == ["cell_type", "perturb_de"] and row["low"] <= row["diff"] <= row["high"]
    on_both = scored[scored["family"].isin(["cell_type", "perturb_de"]) & (scored["mode"] == "direct")
                     & scored["scorable"]]
    assert trained["sft - base"]["loglik"]["n"] == len(on_both) // 2
    assert "| sft - base | generation accuracy | cell_type, perturb_de |" in table
    compared = pd.read_csv(tmp_path / "reports/evaluate/accuracy.csv")
    assert set(compared["checkpoint"]) == {"base", "sft", "chance", "majority"}
    assert compared.loc[(compared["checkpoint"] == "sft") & (compared["family"] == "mean"),
                        "accuracy"].item() == metrics["loglik"]["sft"]["mean_accuracy"]
    summary = json.loads((tmp_path / "reports/evaluate/summary.json").read_text())
    assert summary == {"accuracy": metrics["loglik"]["sft"]["mean_accuracy"],
                       "chance": metrics["loglik"]["sft"]["mean_chance"], "format": sft["format_rate"]}

    client = MlflowClient(mlflow_uri)
    version = client.get_model_version_by_alias("omicsforge", "challenger")
    assert version.tags["eval.mean_accuracy"] == str(sft["mean_accuracy"])
    assert version.tags["checkpoint"] == "sft" and version.tags["git_commit"]

    assert float(version.tags["gate.low"]) <= float(version.tags["gate.mean_accuracy"])
    assert json.loads(version.tags["gate.correct"]) and version.tags["gate.mode"] == "direct"

    # an untrained checkpoint sits at chance: the gate refuses it, in one line, every time
    first = promote_flow()
    assert not first.promoted and first.reason.startswith("refused") and "\n" not in first.reason
    assert first.champion is None
    again = promote_flow()
    assert not again.promoted and again.reason == first.reason


@pytest.mark.slow
def test_checkpoints_left_out_of_generate_get_direct_loglik_only(mlflow_uri, tiny_base, tmp_path):
    _project(tmp_path, tiny_base, generate=["sft"], register_model=False)

    from flows.evaluate import evaluate_flow

    evaluate_flow()

    metrics = json.loads((tmp_path / "reports/evaluate/metrics.json").read_text())
    assert metrics["not_generated"] == ["base"] and list(metrics["checkpoints"]) == ["sft"]
    assert list(metrics["loglik_modes"]["direct"]["loglik"]) == ["base", "sft"]
    assert list(metrics["loglik_modes"]["reasoned"]["loglik"]) == ["sft"]
    assert list(metrics["paired"]) == ["sft - base"] and not metrics["loglik_modes"]["reasoned"]["paired"]
    predictions = pd.read_parquet(tmp_path / "data/evaluate/predictions.parquet")
    assert set(predictions["checkpoint"]) == {"sft"}
    scored = pd.read_parquet(tmp_path / "data/evaluate/loglik.parquet")
    assert set(scored.loc[scored["checkpoint"] == "base", "mode"]) == {"direct"}
    assert "Not generated (`evaluate.generate`; log-likelihood above only): base." in (
        tmp_path / "reports/evaluate/table.md").read_text()


def test_generate_naming_an_unknown_checkpoint_is_one_clear_error(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, tiny_base, generate=["grpo"])

    from flows.evaluate import evaluate_flow
    from tasks.common.errors import InputError

    with pytest.raises(InputError, match=r"evaluate.generate.*\['grpo'\] not in evaluate.checkpoints"):
        evaluate_flow.fn()


def test_generate_must_include_the_registered_checkpoint(tiny_base, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _project(tmp_path, tiny_base, generate=["base"])

    from flows.evaluate import evaluate_flow
    from tasks.common.errors import InputError

    with pytest.raises(InputError, match=r"evaluate.generate: \['base'\] lacks \['sft'\], checkpoints the registry"):
        evaluate_flow.fn()
