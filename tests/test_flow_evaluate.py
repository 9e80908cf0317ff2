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


@pytest.mark.slow
def test_evaluate_flow_table_predictions_registry_and_promote(mlflow_uri, tiny_base, tmp_path):
    raw = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params = {"base": {"seed": 0, "profile": "smoke"}, "evaluate": raw["evaluate"],
              "registry": raw["registry"], "generation": {"engine": "transformers"}}
    params["evaluate"]["checkpoints"] = {"base": "models/base", "sft": "models/sft"}
    params["evaluate"]["profiles"]["smoke"].update(max_problems_per_family=4, max_new_tokens=12)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for name in ("base", "sft"):
        shutil.copytree(tiny_base[0], tmp_path / "models" / name)
    write_table(problems(), tmp_path / "data/problems/problems.parquet", schemas.Problems)
    (tmp_path / "reports/problems").mkdir(parents=True)
    (tmp_path / "reports/problems/baselines.json").write_text(json.dumps({"families": {}}))

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
    assert len(scored) == 2 * int((problems()["split"] == "test").sum())
    table = (tmp_path / "reports/evaluate/table.md").read_text()
    assert "## Log-likelihood accuracy per family" in table and "| sft - base | **mean over families**" in table
    assert "| family | base | sft | majority | random | n |" in table
    assert sorted(p.name for p in (tmp_path / "reports/evaluate/plots").iterdir()) == [
        "accuracy_base.csv", "accuracy_majority.csv", "accuracy_random.csv", "accuracy_sft.csv"]

    client = MlflowClient(mlflow_uri)
    version = client.get_model_version_by_alias("omicsforge", "challenger")
    assert version.tags["eval.mean_accuracy"] == str(sft["mean_accuracy"])
    assert version.tags["checkpoint"] == "sft" and version.tags["git_commit"]

    first = promote_flow()
    assert first.promoted and str(client.get_model_version_by_alias("omicsforge", "champion").version) == \
        str(version.version)
    again = promote_flow()
    assert not again.promoted and again.reason.startswith("unchanged")
