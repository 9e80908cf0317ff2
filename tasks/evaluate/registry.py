"""The MLflow model registry: register a checkpoint as ``challenger``; promote it to ``champion``.

A checkpoint is logged as an MLflow **pyfunc** whose artifact is the model folder itself (HF layout)
plus this project's ``tasks`` package as code: it loads and generates offline with
``tasks.lm.generate`` (same tokenizer conventions, tag tokens kept). ``mlflow.transformers.log_model``
was not used: it builds a transformers pipeline and looks up hub metadata for the model, which a
local tiny model without a hub name and no network do not give; the pyfunc needs neither.

Each version carries tags: ``git_commit``, ``dvc_md5`` (DVC's hash of the model folder, the value
``dvc.lock`` records for the output), ``checkpoint``, ``eval.<metric>`` (the generation summary),
and the gate evidence :func:`gate_tags` writes: the log-likelihood mean accuracy over families
(``evaluate.loglik_mode``) with its 95% interval, the chance and majority-baseline means over the
same families, and each problem's correctness (``gate.correct``: family -> a 0/1 string in problem-id
order, with a hash of the problem ids), so a later challenger can be compared problem by problem.

Which checkpoint is registered (:func:`choose_final`): the first of ``registry.final_checkpoints``
(grpo, then sft) that is not significantly below a later one, on the headline metric or, where
both were generated, on format compliance (a reply the answer can be read from), so a
reinforcement phase that made the model worse, or stopped it answering in the served format,
hands the registry its start checkpoint, and the reason is kept.

Promotion (:func:`decide`) moves ``champion`` to the challenger only when the lower end of its
interval beats chance and the majority baseline, and, when a champion exists, the paired bootstrap
of challenger - champion on the same problems has its lower end above ``min_improvement``. It is
safe to run again (a champion that already is the challenger is left alone); the reason, one line,
is logged and written as the ``promotion`` tag of the challenger version.

>>> weak = {"mean_accuracy": 0.35, "low": 0.31, "high": 0.39, "chance": 0.33, "majority": 0.30}
>>> decide(weak, None, 0.0)
(False, 'refused: challenger mean accuracy 0.350 [0.310, 0.390]: the lower end does not beat chance (0.330)')
>>> strong = {"mean_accuracy": 0.5, "low": 0.45, "high": 0.55, "chance": 0.33, "majority": 0.30}
>>> decide(strong, None, 0.0)[1]
'promoted: no champion yet; challenger mean accuracy 0.500 [0.450, 0.550] beats chance (0.330) and majority (0.300)'
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
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


def signature() -> Any:
    """Input: a ``messages`` column, each a chat (``role``, ``content``); output: the reply text;
    param ``max_new_tokens``. MLflow checks every ``predict`` call against it."""
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Object, ParamSchema, ParamSpec, Property, Schema

    chat = Array(Object([Property("role", "string"), Property("content", "string")]))
    return ModelSignature(inputs=Schema([ColSpec(chat, "messages")]), outputs=Schema([ColSpec("string")]),
                          params=ParamSchema([ParamSpec("max_new_tokens", "long", 256)]))


DESCRIPTION = ("omicsforge checkpoints: a causal LM that reads omics as text (<cell>, <dna>, <protein>) and "
               "answers biology problems, reasoning in <think> and answering in <answer>. Versions arrive as "
               "`challenger` from the evaluate stage; `omicsforge promote` moves `champion` to one that beats "
               "chance, the majority baseline and the current champion (tags gate.*).")


class OmicsForgeModel(mlflow.pyfunc.PythonModel):
    """Greedy chat completions from the logged model folder (``artifacts["model"]``)."""

    def load_context(self, context: Any) -> None:
        self.model_dir = context.artifacts["model"]

    def predict(self, context, model_input, params=None):  # noqa: ANN001  (MLflow reads hints as a schema)
        from tasks.lm.generate import generate

        prompts = [[{"role": m["role"], "content": m["content"]} for m in chat]
                   for chat in model_input["messages"]]
        max_new_tokens = int((params or {}).get("max_new_tokens", 256))
        completions = generate(self.model_dir, prompts, max_new_tokens=max_new_tokens,
                               temperature=0.0, engine="transformers")
        return [c[0] for c in completions]


def register(model_dir: str | Path, name: str, tags: dict[str, str], alias: str = CHALLENGER) -> str:
    """Log ``model_dir`` as a pyfunc in the active run, register it, tag it, point ``alias`` at it."""
    from mlflow import MlflowClient

    with tempfile.TemporaryDirectory() as scratch:
        info = mlflow.pyfunc.log_model(
            name="model", python_model=OmicsForgeModel(),
            artifacts={"model": str(_without_links(Path(model_dir), Path(scratch)))},
            code_paths=[str(PROJECT / "tasks")], pip_requirements=["torch", "transformers", "mlflow"],
            signature=signature())
    client = MlflowClient()
    if not client.search_registered_models(filter_string=f"name = '{name}'"):
        client.create_registered_model(name, description=DESCRIPTION)
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    client.update_model_version(name, version.version, description=(
        f"checkpoint {tags.get('checkpoint', '?')} of commit {tags.get('git_commit', '?')[:7]}: log-likelihood "
        f"mean accuracy {tags.get('gate.mean_accuracy', '?')} [{tags.get('gate.low', '?')}, "
        f"{tags.get('gate.high', '?')}], chance {tags.get('gate.chance', '?')}"))
    client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def _without_links(model_dir: Path, scratch: Path) -> Path:
    """``model_dir``, or where it holds symbolic links, a copy under ``scratch`` (same folder name)
    with each link replaced by the file it points to. A DVC checkout with ``cache.type: symlink``
    links every file of an output into the cache, and MLflow refuses an artifact whose resolved
    path leaves the folder it logs ("resolved path is outside the artifact directory")."""
    if not any(p.is_symlink() for p in [model_dir, *model_dir.rglob("*")]):
        return model_dir
    return Path(shutil.copytree(model_dir.resolve(), scratch / model_dir.name, symlinks=False))


def _alias_version(client: Any, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def gate_tags(results: Any, mode: str, chance: float, majority: float, seed: int = 0) -> dict[str, str]:
    """The gate evidence of one checkpoint as version tags, from its log-likelihood results
    (``loglik_eval`` rows of one mode: problem_id, family, scorable, correct)."""
    import hashlib

    from tasks.evaluate.stats import macro_accuracy

    scored = results[results["scorable"].astype(bool)].sort_values("problem_id")
    mean = macro_accuracy(scored["correct"].astype(bool).to_numpy(), scored["family"].to_numpy(), seed=seed)
    bits = {f: "".join("1" if c else "0" for c in g["correct"].astype(bool))
            for f, g in scored.groupby("family", sort=True)}
    ids = hashlib.sha1("\n".join(scored["problem_id"]).encode()).hexdigest()[:16]
    return {"gate.mode": mode, "gate.mean_accuracy": f"{mean['accuracy']:.4f}", "gate.low": f"{mean['low']:.4f}",
            "gate.high": f"{mean['high']:.4f}", "gate.chance": f"{chance:.4f}",
            "gate.majority": f"{majority:.4f}", "gate.problems": ids, "gate.correct": json.dumps(bits)}


def _gate(version: Any) -> dict:
    tags = version.tags
    missing = [k for k in ("gate.mean_accuracy", "gate.low", "gate.correct") if k not in tags]
    if missing:
        raise ValueError(f"model version {version.version} has no gate evidence ({', '.join(missing)}): "
                         "evaluate it again with this code")
    out = {k: float(tags[f"gate.{k}"]) for k in ("mean_accuracy", "low", "high", "chance", "majority")}
    out.update(problems=tags.get("gate.problems"), correct=json.loads(tags["gate.correct"]),
               version=str(version.version))
    return out


def paired_to(challenger: dict, champion: dict, seed: int = 0) -> dict | None:
    """Paired bootstrap of challenger - champion over the mean of families; None when they were
    evaluated on different problems."""
    import numpy as np

    from tasks.evaluate.stats import paired_bootstrap

    if challenger.get("problems") != champion.get("problems"):
        return None
    families = sorted(challenger["correct"])
    a = np.array([c == "1" for f in families for c in challenger["correct"][f]])
    b = np.array([c == "1" for f in families for c in champion["correct"][f]])
    fam = np.array([f for f in families for _ in challenger["correct"][f]])
    return paired_bootstrap(a, b, fam, seed=seed).iloc[-1].to_dict()


def choose_final(candidates: Sequence[str], paired: Callable[[str, str], dict],
                 paired_format: Callable[[str, str], dict | None] | None = None) -> tuple[str, list[str]]:
    """The checkpoint to register, and why each one before it was passed over: the first of
    ``candidates`` (preference order) whose paired difference to every later candidate
    (``paired(a, b)``: the mean-over-families row of a - b, with its 95% interval ``low``, ``high``)
    does not lie wholly below 0, nor, where ``paired_format(a, b)`` gives one (both generated), its
    paired difference in format compliance. The last candidate is taken when reached.

    >>> below = {"diff": -0.029, "low": -0.050, "high": -0.010}
    >>> level = {"diff": -0.01, "low": -0.05, "high": 0.03}
    >>> choose_final(["grpo", "sft"], lambda a, b: below)
    ('sft', ['grpo is below sft: paired difference -0.029 [-0.050, -0.010]'])
    >>> choose_final(["grpo", "sft"], lambda a, b: level)
    ('grpo', [])
    >>> choose_final(["grpo", "sft"], lambda a, b: level, lambda a, b: below)
    ('sft', ['grpo is below sft in format compliance: paired difference -0.029 [-0.050, -0.010]'])
    """
    if not candidates:
        raise ValueError("no candidate checkpoint to register")
    passed_over = []
    for i, name in enumerate(candidates[:-1]):
        worse = [(later, "", d) for later in candidates[i + 1:] if (d := paired(name, later))["high"] < 0]
        if paired_format is not None:
            worse += [(later, " in format compliance", d) for later in candidates[i + 1:]
                      if (d := paired_format(name, later)) is not None and d["high"] < 0]
        if not worse:
            return name, passed_over
        passed_over += [f"{name} is below {later}{what}: paired difference {d['diff']:+.3f} "
                        f"[{d['low']:+.3f}, {d['high']:+.3f}]" for later, what, d in worse]
    return candidates[-1], passed_over


def decide(challenger: dict, champion: dict | None, margin: float) -> tuple[bool, str]:
    """Whether the challenger may become champion, and the reason in one line."""
    c = challenger
    said = f"challenger mean accuracy {c['mean_accuracy']:.3f} [{c['low']:.3f}, {c['high']:.3f}]"
    for name in ("chance", "majority"):
        if not c["low"] > c[name]:
            return False, f"refused: {said}: the lower end does not beat {name} ({c[name]:.3f})"
    if champion is None:
        return True, (f"promoted: no champion yet; {said} beats chance ({c['chance']:.3f}) and "
                      f"majority ({c['majority']:.3f})")
    diff = paired_to(c, champion)
    if diff is None:
        return False, (f"refused: {said} was evaluated on other problems than champion "
                       f"v{champion['version']}; evaluate both on one test split")
    versus = (f"champion v{champion['version']} ({champion['mean_accuracy']:.3f}): paired difference "
              f"{diff['diff']:+.3f} [{diff['low']:+.3f}, {diff['high']:+.3f}]")
    if diff["low"] > margin:
        return True, f"promoted: {said} beats {versus}"
    return False, f"refused: {said} does not beat {versus} (lower end must exceed {margin})"


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    challenger: str | None
    champion: str | None  # the champion version after the decision


def promote(name: str, margin: float = 0.0, client: Any = None, dry_run: bool = False) -> Decision:
    """Move ``champion`` to ``challenger`` when :func:`decide` says so; idempotent. ``dry_run``:
    the same decision and reason (prefixed ``dry run:``), and nothing in the registry changes."""
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
        ok, reason = decide(_gate(challenger), None if champion is None else _gate(champion), margin)
        if ok and not dry_run:
            client.set_registered_model_alias(name, CHAMPION, challenger.version)
        decision = Decision(ok, reason, challenger_v, challenger_v if ok else champion_v)
    if dry_run:  # the champion stays what it is
        return replace(decision, reason=f"dry run: {decision.reason}", champion=champion_v)
    client.set_model_version_tag(name, challenger_v, "promotion", decision.reason)
    client.set_registered_model_tag(name, "last_promotion",
                                    json.dumps({"challenger": decision.challenger,
                                                "champion": decision.champion,
                                                "reason": decision.reason}))
    log.info("%s v%s: %s", name, challenger_v, decision.reason)
    return decision
