"""Registry: two versions in a scratch store, promote, promote again, refuse a worse challenger."""
import shutil
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from tasks.evaluate import registry

NAME = "omicsforge"


def _register(model_dir, correct: list[bool], chance=0.25, majority=0.3):
    """A version whose gate evidence is ``correct`` on one family of problems p00, p01, ..."""
    results = pd.DataFrame({"problem_id": [f"p{i:02d}" for i in range(len(correct))], "family": "f",
                            "scorable": True, "correct": correct})
    tags = registry.gate_tags(results, "reasoned", chance=chance, majority=majority)
    with mlflow.start_run():
        return registry.register(model_dir, NAME, {**tags, "dvc_md5": registry.dvc_md5(model_dir)})


@pytest.mark.slow
def test_register_promote_idempotent_and_refuse_worse(mlflow_uri, tiny_base):
    model_dir = tiny_base[0]
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient()

    v0 = _register(model_dir, [True] * 12 + [False] * 28)  # 0.30: at chance and majority
    at_chance = registry.promote(NAME, client=client)
    assert not at_chance.promoted and at_chance.reason.startswith("refused") and "chance" in at_chance.reason
    assert "\n" not in at_chance.reason and at_chance.champion is None

    v1 = _register(model_dir, [True] * 24 + [False] * 16)  # 0.60
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == v1
    dry = registry.promote(NAME, client=client, dry_run=True)  # says it, changes nothing
    assert dry.promoted and dry.reason.startswith("dry run: promoted") and dry.champion is None
    assert "champion" not in client.get_registered_model(NAME).aliases
    assert "promotion" not in client.get_model_version(NAME, v1).tags
    first = registry.promote(NAME, client=client)
    assert first.promoted and first.reason.startswith("promoted: no champion yet")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v1

    again = registry.promote(NAME, client=client)  # safe to run twice
    assert not again.promoted and again.reason.startswith("unchanged")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v1

    v2 = _register(model_dir, [True] * 38 + [False] * 2)  # 0.95, right where v1 was wrong
    better = registry.promote(NAME, client=client)
    assert better.promoted and str(client.get_model_version_by_alias(NAME, "champion").version) == v2
    assert client.get_model_version(NAME, v2).tags["promotion"] == better.reason
    assert "paired difference" in better.reason

    v3 = _register(model_dir, [True] * 37 + [False] * 3)  # 0.925: not better, by the paired test
    worse = registry.promote(NAME, client=client)
    assert not worse.promoted and worse.reason.startswith("refused") and f"champion v{v2}" in worse.reason
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v2
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == v3
    assert "refused" in client.get_model_version(NAME, v3).tags["promotion"]
    assert client.get_model_version(NAME, v1).tags["dvc_md5"].endswith(".dir")
    assert v0 != v1


@pytest.mark.slow
def test_registered_pyfunc_generates_offline(mlflow_uri, tiny_base):
    mlflow.set_tracking_uri(mlflow_uri)
    version = _register(tiny_base[0], [True, False])
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    chat = [{"role": "user", "content": "<cell>CD3D, CD8A</cell>"}]
    out = model.predict(pd.DataFrame({"messages": [chat]}), params={"max_new_tokens": 4})
    assert len(out) == 1 and isinstance(out[0], str)
    assert model.metadata.get_input_schema().input_names() == ["messages"]
    registered = MlflowClient().get_registered_model(NAME)
    assert registered.description.startswith("omicsforge checkpoints")
    assert "mean accuracy" in MlflowClient().get_model_version(NAME, version).description


@pytest.mark.slow
def test_a_checkpoint_whose_files_link_into_a_cache_registers_whole(mlflow_uri, tiny_base, tmp_path):
    # what `dvc checkout` leaves with cache.type symlink: every file a link to a file elsewhere
    cache, linked = tmp_path / "cache", tmp_path / "workspace" / "sft"
    shutil.copytree(tiny_base[0], cache)
    linked.mkdir(parents=True)
    for f in cache.iterdir():
        (linked / f.name).symlink_to(f)
    mlflow.set_tracking_uri(mlflow_uri)
    version = _register(linked, [True, False])
    logged = Path(mlflow.artifacts.download_artifacts(f"models:/{NAME}/{version}", dst_path=str(tmp_path / "dl")))
    files = {f.relative_to(logged / "artifacts" / "sft").as_posix(): f.read_bytes()
             for f in (logged / "artifacts" / "sft").rglob("*") if f.is_file()}
    assert files == {f.name: f.read_bytes() for f in cache.iterdir()}
    assert not any(f.is_symlink() for f in logged.rglob("*"))


def test_promote_without_challenger_is_a_clear_error(mlflow_uri):
    mlflow.set_tracking_uri(mlflow_uri)
    MlflowClient().create_registered_model(NAME)
    with pytest.raises(ValueError, match="no 'challenger' alias"):
        registry.promote(NAME)


def _scored(correct: dict[str, list[bool]]) -> pd.DataFrame:
    """Log-likelihood rows of several checkpoints on the same problems of two families."""
    return pd.concat([pd.DataFrame({"checkpoint": name, "problem_id": [f"p{i:02d}" for i in range(len(c))],
                                    "family": ["a", "b"] * (len(c) // 2), "scorable": True, "correct": c})
                      for name, c in correct.items()], ignore_index=True)


@pytest.mark.parametrize("grpo, chosen", [([True] * 8 + [False] * 32, "sft"),      # 0.2 against 0.8
                                          ([True] * 30 + [False] * 10, "grpo")])   # 0.75: not below
def test_the_registry_receives_grpo_only_when_it_is_not_below_sft(grpo, chosen):
    from tasks.evaluate.comparison import paired_mean

    rows = _scored({"sft": [True] * 32 + [False] * 8, "grpo": grpo})
    final, passed_over = registry.choose_final(["grpo", "sft"], lambda a, b: paired_mean(rows, a, b))
    assert final == chosen
    assert passed_over == ([] if chosen == "grpo" else [passed_over[0]])
    if chosen == "sft":
        assert passed_over[0].startswith("grpo is below sft: paired difference -0.600 [")


@pytest.mark.parametrize("grpo_format, chosen", [([True] * 8 + [False] * 32, "sft"),  # 0.2 against 0.8
                                                 ([True] * 30 + [False] * 10, "grpo")])
def test_a_checkpoint_whose_format_fell_is_passed_over(grpo_format, chosen):
    """Level on the headline, grpo is registered only if its replies keep the format."""
    from tasks.evaluate.comparison import paired_mean

    level = _scored({"sft": [True, False] * 20, "grpo": [True, False] * 20})
    formats = _scored({"sft": [True] * 32 + [False] * 8, "grpo": grpo_format})
    final, passed_over = registry.choose_final(["grpo", "sft"], lambda a, b: paired_mean(level, a, b),
                                               lambda a, b: paired_mean(formats, a, b))
    assert final == chosen
    assert len(passed_over) == (chosen == "sft")
    if chosen == "sft":
        assert passed_over[0].startswith("grpo is below sft in format compliance: paired difference -0.600 [")
