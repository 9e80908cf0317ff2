"""The MLflow model registry: register a checkpoint as ``challenger``; promote it to ``champion``.

A checkpoint is logged as an MLflow **pyfunc** whose artifact is the model folder itself (HF layout)
plus this project's ``tasks`` package as code: it loads and generates offline with
``tasks.lm.generate`` (same tokenizer conventions, tag tokens kept). ``mlflow.transformers.log_model``
was not used: it builds a transformers pipeline and looks up hub metadata for the model, which a
local tiny model without a hub name and no network do not give; the pyfunc needs neither.

Each version carries tags: ``git_commit``, ``dvc_md5`` (DVC's hash of the model folder, the value
``dvc.lock`` records for the output), ``checkpoint``, ``eval.<metric>`` (the evaluation summary)
and ``eval_summary`` (JSON). Promotion compares the challenger's ``eval.<gate>`` with the champion's
and moves the ``champion`` alias only when the challenger is better by more than a margin; it is
safe to run again (a champion that already is the challenger is left alone), and the reason is
logged and written as the ``promotion`` tag of the challenger version.

>>> decide(0.5, None, "mean_accuracy", 0.0)[0]
True
>>> decide(0.4, 0.5, "mean_accuracy", 0.0)
(False, 'refused: challenger mean_accuracy 0.4000 does not beat champion 0.5000 by more than 0.0')
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow.pyfunc

log = logging.getLogger(__name__)
CHALLENGER, CHAMPION = "challenger", "champion"
PROJECT = Path(__file__).resolve().parents[2]


def dvc_md5(folder: str | Path) -> str:
    """DVC's md5 of a folder (``<hash>.dir``), the value dvc.lock records for that output."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB
    from dvc_objects.fs.local import LocalFileSystem

    fs = LocalFileSystem()
    with tempfile.TemporaryDirectory(prefix="dvc-md5-") as tmp:
        _, _, obj = build(HashFileDB(fs, tmp), str(folder), fs, "md5")
    return obj.hash_info.value


class OmicsForgeModel(mlflow.pyfunc.PythonModel):
    """Greedy chat completions from the logged model folder (``artifacts["model"]``)."""

    def load_context(self, context: Any) -> None:
        self.model_dir = context.artifacts["model"]

    def predict(self, context, model_input, params=None):  # noqa: ANN001  (MLflow reads hints as a schema)
        from tasks.lm.generate import generate

        prompts = list(model_input["prompt"]) if hasattr(model_input, "columns") else list(model_input)
        max_new_tokens = int((params or {}).get("max_new_tokens", 256))
        completions = generate(self.model_dir, prompts, max_new_tokens=max_new_tokens,
                               temperature=0.0, engine="transformers")
        return [c[0] for c in completions]


def register(model_dir: str | Path, name: str, tags: dict[str, str], alias: str = CHALLENGER) -> str:
    """Log ``model_dir`` as a pyfunc in the active run, register it, tag it, point ``alias`` at it."""
    from mlflow import MlflowClient

    info = mlflow.pyfunc.log_model(
        name="model", python_model=OmicsForgeModel(), artifacts={"model": str(model_dir)},
        code_paths=[str(PROJECT / "tasks")], pip_requirements=["torch", "transformers", "mlflow"])
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    client = MlflowClient()
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def decide(challenger: float, champion: float | None, gate: str, margin: float) -> tuple[bool, str]:
    """Whether the challenger's gate value beats the champion's, and the reason in words."""
    if champion is None:
        return True, f"promoted: no champion yet; challenger {gate} {challenger:.4f}"
    if challenger > champion + margin:
        return True, (f"promoted: challenger {gate} {challenger:.4f} beats champion "
                      f"{champion:.4f} by more than {margin}")
    return False, (f"refused: challenger {gate} {challenger:.4f} does not beat champion "
                   f"{champion:.4f} by more than {margin}")


@dataclass
class Decision:
    promoted: bool
    reason: str
    challenger: str | None
    champion: str | None  # the champion version after the decision


def _gate_value(version: Any, gate: str) -> float:
    value = version.tags.get(f"eval.{gate}")
    if value is None:
        raise ValueError(f"model version {version.version} has no tag eval.{gate}")
    return float(value)


def promote(name: str, gate: str, margin: float = 0.0, client: Any = None) -> Decision:
    """Move ``champion`` to ``challenger`` when it wins on ``gate``; idempotent."""
    from mlflow import MlflowClient

    client = client or MlflowClient()
    challenger = _alias_version(client, name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"registered model {name!r} has no {CHALLENGER!r} alias: run the evaluate stage")
    champion = _alias_version(client, name, CHAMPION)
    challenger_v = str(challenger.version)
    champion_v = None if champion is None else str(champion.version)
    if champion_v == challenger_v:
        decision = Decision(False, f"unchanged: version {challenger_v} is already the champion",
                            challenger_v, champion_v)
    else:
        ok, reason = decide(_gate_value(challenger, gate),
                            None if champion is None else _gate_value(champion, gate), gate, margin)
        if ok:
            client.set_registered_model_alias(name, CHAMPION, challenger.version)
        decision = Decision(ok, reason, challenger_v, challenger_v if ok else champion_v)
    client.set_model_version_tag(name, challenger_v, "promotion", decision.reason)
    client.set_registered_model_tag(name, "last_promotion",
                                    json.dumps({"challenger": decision.challenger,
                                                "champion": decision.champion,
                                                "reason": decision.reason}))
    log.info("%s v%s: %s", name, challenger_v, decision.reason)
    return decision
