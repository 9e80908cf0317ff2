"""Training progress from the child to the Prefect UI: steps done out of the phase's total.

The child (any trainer, through :class:`tasks.train.mlflow_log.MlflowLog`) prints one marked line
per log step; the parent's launch reads the child's output anyway and hands each line to
:class:`PrefectProgress`, which keeps a Prefect progress artifact (``<stage>-progress``) up to date
in the flow run. Outside a flow run, nothing is published.

>>> line = progress_line("sft/answer", 300, 1500)
>>> line
'[omicsforge-progress] {"phase": "sft/answer", "step": 300, "total": 1500}'
>>> parse(line)
{'phase': 'sft/answer', 'step': 300, 'total': 1500}
>>> parse("{'loss': 1.2}") is None
True
"""
from __future__ import annotations

import json
from typing import Any

MARK = "[omicsforge-progress] "


def progress_line(phase: str, step: int, total: int) -> str:
    return MARK + json.dumps({"phase": phase, "step": int(step), "total": int(total)})


def parse(line: str) -> dict[str, Any] | None:
    """The progress a child's output line reports, or None for any other line."""
    if not line.startswith(MARK):
        return None
    try:
        return json.loads(line[len(MARK):])
    except json.JSONDecodeError:
        return None


class PrefectProgress:
    """A Prefect progress artifact keyed ``<stage>-progress``, moved by the child's progress lines."""

    def __init__(self, stage: str) -> None:
        from tasks.common.tracking import flow_run_id

        self.key = f"{stage}-progress"
        self.active = flow_run_id() is not None
        self.artifact_id = None

    def __call__(self, line: str) -> None:
        if not self.active or (got := parse(line)) is None:
            return
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        percent = 100.0 * got["step"] / max(got["total"], 1)
        text = f"{got['phase']}: step {got['step']} of {got['total']}"
        if self.artifact_id is None:
            self.artifact_id = create_progress_artifact(percent, key=self.key, description=text)
        else:
            update_progress_artifact(self.artifact_id, percent, description=text)
