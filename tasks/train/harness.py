"""The training harness of the pretrain, sft and grpo stages: scratch folder, run.json, the launch.

Each training stage runs its child (``tasks/train/<stage>.py``) the same way:

1. :func:`prepare` keys the run: sha256 of the stage's params, the hardware layout of ``base``
   (``accelerate_config``, ``gpus``: checkpoints of another layout may not load), the seed, any
   extra values the flow derived, and the content of the input files and folders. The work folder
   is ``scratch/<stage>/<key>/`` (git-ignored, outside DVC outputs); folders of other keys under
   ``scratch/<stage>/`` are deleted, since their checkpoints can never resume.
2. :func:`run_child` writes ``run.json`` (the flow's entries, plus ``seed``, ``gpus``, ``work_dir``
   and ``metrics_path``) and launches ``tasks.train.<stage>`` through
   :func:`tasks.common.dispatch.launch` with ``base.accelerate_config`` and ``base.gpus`` (null
   config: one CPU process), its output appended to ``train.log`` and the stage's MLflow run in
   ``MLFLOW_RUN_ID`` (the child logs there through :class:`tasks.train.mlflow_log.MlflowLog`).
   It returns the child's ``metrics.json``.

A rerun with the same inputs finds the same folder and the child resumes from its newest complete
checkpoint. The flow deletes the folder once the model is saved.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> (root / "data.txt").write_text("ACGT")
4
>>> key = scratch_key({"lr": 0.001}, 0, [root / "data.txt"])
>>> len(key), key == scratch_key({"lr": 0.001}, 0, [root / "data.txt"])
(12, True)
>>> key != scratch_key({"lr": 0.001}, 1, [root / "data.txt"]) != scratch_key({"lr": 0.002}, 0, [root])
True
>>> old = work_dir("sft", "aaaaaaaaaaaa", root / "scratch")
>>> new = work_dir("sft", key, root / "scratch")
>>> sorted(p.name for p in (root / "scratch" / "sft").iterdir()) == [key]
True
"""
from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tasks.common import dispatch
from tasks.common.params import Base, Params
from tasks.common.tracking import tracking_uri
from tasks.train.progress import PrefectProgress

SCRATCH = Path("scratch")


def digest(paths: Iterable[str | Path]) -> str:
    """Content hash of files and folders (a sorted walk of each folder; names and bytes)."""
    h = hashlib.sha256()
    for root in map(Path, paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update(str(f.relative_to(root.parent)).encode())
            with f.open("rb") as fh:
                h.update(hashlib.file_digest(fh, "sha256").digest())
    return h.hexdigest()


def scratch_key(config: Any, seed: int, inputs: Iterable[str | Path] = ()) -> str:
    """12 hex chars of sha256 over ``config`` (JSON), ``seed`` and the inputs' content."""
    blob = json.dumps([config, seed], sort_keys=True, default=str)
    return hashlib.sha256((blob + digest(inputs)).encode()).hexdigest()[:12]


def work_dir(stage: str, key: str, root: Path = SCRATCH) -> Path:
    """``root/<stage>/<key>/``, created; every other folder under ``root/<stage>/`` is deleted."""
    scratch = root / stage
    if scratch.is_dir():
        for stale in scratch.iterdir():  # checkpoints of other inputs can never resume
            if stale.name != key:
                shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    work = scratch / key
    work.mkdir(parents=True, exist_ok=True)
    return work


def layout(base: Base) -> dict[str, Any]:
    """The hardware layout every training stage takes from ``base``."""
    return {"accelerate_config": base.accelerate_config, "gpus": base.gpus}


def prepare(stage: str, params: Params, inputs: Iterable[str | Path] = (), extra: Any = None,
            root: Path = SCRATCH) -> Path:
    """The work folder of this run of ``stage``: keyed on its params, layout, seed, extra and inputs."""
    config = {"params": getattr(params, stage).model_dump(mode="json"), "layout": layout(params.base),
              "extra": extra}
    return work_dir(stage, scratch_key(config, params.base.seed, inputs), root)


def run_child(stage: str, work: Path, cfg: dict[str, Any], base: Base,
              run_id: str | None = None) -> dict[str, Any]:
    """Write ``work/run.json`` and run ``tasks.train.<stage>`` on the layout of ``base``; return
    the metrics the child wrote (``work/metrics.json``). Raises ``LaunchError`` if it fails."""
    cfg = {**cfg, "seed": base.seed, "gpus": base.gpus, "work_dir": str(work),
           "metrics_path": str(work / "metrics.json")}
    (work / "run.json").write_text(json.dumps(cfg, indent=2))
    # An empty MLFLOW_RUN_ID (no run_id) overrides an inherited one: the child then logs nothing.
    dispatch.launch(f"tasks.train.{stage}", ["--config", str(work / "run.json")],
                    config_file=base.accelerate_config, gpus=base.gpus, log_file=work / "train.log",
                    env={"MLFLOW_RUN_ID": run_id or "", "MLFLOW_TRACKING_URI": tracking_uri()},
                    on_line=PrefectProgress(stage))
    return json.loads((work / "metrics.json").read_text())
