"""Registry: two versions in a scratch store, promote, promote again, refuse a worse challenger."""
import mlflow
import pytest
from mlflow import MlflowClient

from tasks.evaluate import registry

NAME = "omicsforge"


def _register(model_dir, accuracy):
    with mlflow.start_run():
        return registry.register(model_dir, NAME, {"eval.mean_accuracy": str(accuracy),
                                                   "dvc_md5": registry.dvc_md5(model_dir)})


@pytest.mark.slow
def test_register_promote_idempotent_and_refuse_worse(mlflow_uri, tiny_base):
    model_dir = tiny_base[0]
    mlflow.set_tracking_uri(mlflow_uri)
    client = MlflowClient()

    v1 = _register(model_dir, 0.30)
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == v1
    first = registry.promote(NAME, "mean_accuracy", client=client)
    assert first.promoted and first.reason.startswith("promoted: no champion yet")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v1

    again = registry.promote(NAME, "mean_accuracy", client=client)  # safe to run twice
    assert not again.promoted and again.reason.startswith("unchanged")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v1

    v2 = _register(model_dir, 0.45)
    better = registry.promote(NAME, "mean_accuracy", client=client)
    assert better.promoted and str(client.get_model_version_by_alias(NAME, "champion").version) == v2
    assert client.get_model_version(NAME, v2).tags["promotion"] == better.reason

    v3 = _register(model_dir, 0.40)
    worse = registry.promote(NAME, "mean_accuracy", client=client)
    assert not worse.promoted and worse.reason.startswith("refused")
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == v2
    assert str(client.get_model_version_by_alias(NAME, "challenger").version) == v3
    assert "refused" in client.get_model_version(NAME, v3).tags["promotion"]
    assert client.get_model_version(NAME, v1).tags["dvc_md5"].endswith(".dir")


@pytest.mark.slow
def test_registered_pyfunc_generates_offline(mlflow_uri, tiny_base):
    mlflow.set_tracking_uri(mlflow_uri)
    version = _register(tiny_base[0], 0.1)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    out = model.predict(["<cell>CD3D, CD8A</cell>"], params={"max_new_tokens": 4})
    assert len(out) == 1 and isinstance(out[0], str)


def test_promote_without_challenger_is_a_clear_error(mlflow_uri):
    mlflow.set_tracking_uri(mlflow_uri)
    MlflowClient().create_registered_model(NAME)
    with pytest.raises(ValueError, match="no 'challenger' alias"):
        registry.promote(NAME, "mean_accuracy")
