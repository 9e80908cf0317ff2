"""End to end on the smoke profile: corpus (real shipped data) + textify stand-ins -> problems."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tasks.common import schemas
from tasks.problems.choices import surface_cue_accuracy
from tasks.common.schemas import FAMILIES
from tasks.common.splits import check_families_present, check_leakage
from tasks.common.storage import read_table
from tests.conftest import PROJECT
from tests.textify_standins import write_standins


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("problems")
    params = yaml.safe_load((PROJECT / "params.yaml").read_text())
    params["base"]["profile"] = "smoke"
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "data" / "raw").mkdir(parents=True)
    os.symlink(PROJECT / "data" / "raw" / "perturbqa", root / "data" / "raw" / "perturbqa")
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    corpus = PROJECT / "data" / "corpus"
    if (corpus / "motifs.parquet").exists():  # reuse a built corpus: the ontology load is slow
        shutil.copytree(corpus, root / "data" / "corpus")
    else:
        subprocess.run([sys.executable, "-m", "flows.corpus"], cwd=root, env=env, check=True,
                       capture_output=True)
    write_standins(root / "data" / "textify")
    done = subprocess.run([sys.executable, "-m", "flows.problems"], cwd=root, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.slow
def test_every_family_in_both_splits_without_leakage(built):
    df = read_table(built / "data/problems/problems.parquet", schemas.Problems)
    check_leakage(df)
    check_families_present(df, FAMILIES)
    assert df["id"].is_unique and not df["prompt"].str.contains("<answer>").any()
    perturb = df[df["family"].str.startswith("perturb_")]
    pq = read_table(built / "data/corpus/perturbqa.parquet", schemas.PerturbPairs)
    own = pq.drop_duplicates(["cell_line", "pert"]).set_index(["cell_line", "pert"])["split"]
    for r in perturb.itertuples():
        assert r.split == own[(r.source_ids[0], r.source_ids[1])]


@pytest.mark.slow
def test_choice_only_classifier_is_at_chance(built):
    df = pd.read_parquet(built / "data/problems/problems.parquet")
    mc = df[df["answer_type"] == "multiple_choice"]
    pooled = surface_cue_accuracy(mc[mc["split"] == "train"], mc[mc["split"] == "test"])
    sd = np.sqrt(pooled["chance"] * (1 - pooled["chance"]) / pooled["n"])
    # two-sided: a cue against the right answer (below chance) misleads a model as much
    assert abs(pooled["accuracy"] - pooled["chance"]) <= 3 * sd, pooled
    metrics = json.loads((built / "reports/problems/metrics.json").read_text())
    for family, cue in metrics["surface_cue"].items():
        sd = np.sqrt(cue["chance"] * (1 - cue["chance"]) / cue["n"])
        assert abs(cue["accuracy"] - cue["chance"]) <= 3 * sd + 0.05, (family, cue)


@pytest.mark.slow
def test_options_named_after_entities_stay_in_their_split(built):
    """Where the options name split entities (motifs, CDSs, diseases, genes: no test answer is a
    train answer), no test option is a train answer either: a model that learnt the train answers
    would otherwise pick against the right one (tf_binding fell to 0.04 that way)."""
    df = pd.read_parquet(built / "data/problems/problems.parquet")
    mc = df[df["answer_type"] == "multiple_choice"]
    entity_named = 0
    for family, rows in mc.groupby("family"):
        train_answers = set(rows.loc[rows["split"] == "train", "answer"])
        test = rows[rows["split"] == "test"]
        if test["answer"].isin(train_answers).any():
            continue  # options are shared labels (cell types, protein families, bins)
        entity_named += 1
        seen = {c for choices in test["choices"] for c in choices} & train_answers
        assert not seen, (family, sorted(seen)[:3])
    assert entity_named >= 3


@pytest.mark.slow
def test_reports_baselines_and_samples(built):
    baselines = json.loads((built / "reports/problems/baselines.json").read_text())
    assert set(baselines["families"]) == set(FAMILIES)
    for line, result in baselines["perturbqa_per_gene_auroc"].items():
        assert 0 <= result["full_test"]["auroc"] <= 1
    for family in FAMILIES:
        text = (built / f"reports/problems/samples/{family}.md").read_text()
        assert text.count("**Answer:**") == 10
