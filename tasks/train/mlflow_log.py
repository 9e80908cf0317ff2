"""One MLflow logging callback for every training child (pretrain, sft, grpo).

The flow runs the child with ``MLFLOW_RUN_ID`` (the stage's run) and ``MLFLOW_TRACKING_URI``
(tasks/train/harness.py). :class:`MlflowLog` logs each Trainer log line there, from the main
process only, as ``<stage>/<phase>/<metric>`` at the global step (``sft/cold_start/loss``,
``pretrain/train/eval_loss``, ``grpo/online/reward``). A resumed run replays the history it
restored, so the stage's run holds the whole curve. Without ``MLFLOW_RUN_ID`` it does nothing:
the children run without MLflow.

>>> metric_values({"loss": 1.5, "epoch": 0.3, "step": 4, "flag": True, "note": "x"}, "sft/cold_start")
{'sft/cold_start/loss': 1.5}
"""
from __future__ import annotations

import os
import time
from typing import Any

from transformers import TrainerCallback

from tasks.train.progress import progress_line

SKIPPED = ("step", "epoch")


def metric_values(entry: dict[str, Any], prefix: str) -> dict[str, float]:
    """The numeric entries of a log line (no step, epoch or flags), named ``<prefix>/<key>``."""
    return {f"{prefix}/{k}": float(v) for k, v in entry.items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in SKIPPED}


class MlflowLog(TrainerCallback):
    """Log lines of one training phase to the stage's MLflow run as ``<stage>/<phase>/<metric>``."""

    def __init__(self, stage: str, phase: str) -> None:
        self.prefix = f"{stage}/{phase}"
        self.run_id = os.environ.get("MLFLOW_RUN_ID") or None
        self.client = None
        if self.run_id:
            from mlflow import MlflowClient

            self.client = MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or None)

    def values(self, entry: dict[str, Any]) -> dict[str, float]:
        """What one log line logs; a subclass may add derived values."""
        return metric_values(entry, self.prefix)

    def log(self, entry: dict[str, Any], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(1000 * time.time())
        metrics = [Metric(k, v, stamp, step) for k, v in self.values(entry).items()]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.client and state.is_world_process_zero and state.global_step > 0:
            for entry in state.log_history:  # resumed: replay the curve so far into this run
                self.log(entry, entry.get("step", 0))

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
        if state.is_world_process_zero:  # the parent turns this line into Prefect progress
            print(progress_line(self.prefix, state.global_step, state.max_steps), flush=True)
        if self.client and state.is_world_process_zero and logs:
            self.log(logs, state.global_step)
