"""Flow ``pipeline``: what a Prefect deployment runs — DVC, never a stage behind DVC's back.

``dvc repro`` (or ``dvc exp run`` when the run names an experiment or overrides params) decides
which stages run; each stage's own Prefect flow starts as DVC's child, so the flow runs of the
stages appear in the same Prefect server as this one. Afterwards, when the project has a default
DVC remote, outputs are pushed there, and a named experiment is pushed with ``dvc exp push`` when
a git remote exists to hold its ref. Deployed through ``prefect.yaml``; ``docs/cluster.md`` shows
the server, work pool and worker.

>>> dvc_command(["corpus"], experiment=None, set_params={})
['repro', 'corpus']
>>> dvc_command([], "tiny", {"base.profile": "smoke", "corpus.perturbqa_files": ["k562-de"]})
['exp', 'run', '--name', 'tiny', '-S', 'base.profile=smoke', '-S', 'corpus.perturbqa_files=["k562-de"]']
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import json
import os
import shlex
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

PROJECT = Path(__file__).resolve().parent.parent


class DvcError(RuntimeError):
    """A ``dvc`` command failed; the message carries the tail of its output."""


def dvc_command(targets: list[str], experiment: str | None, set_params: dict[str, Any]) -> list[str]:
    """The ``dvc repro`` / ``dvc exp run`` arguments for one pipeline run."""
    if experiment is None and not set_params:
        return ["repro", *targets]
    cmd = ["exp", "run"]
    if experiment:
        cmd += ["--name", experiment]
    for key, value in set_params.items():
        # DVC parses the value as YAML; JSON is YAML, so lists and numbers keep their types.
        cmd += ["-S", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    return cmd + list(targets)


def _child_env() -> dict[str, str]:
    # Stage commands are `python -m flows.<stage>`: the `python` DVC finds must be this one.
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), env.get("PYTHONPATH")]))
    return env


def _dvc(args: list[str]) -> str:
    """Run ``dvc <args>`` in the project, logging each line; raise DvcError with the tail on failure."""
    logger = get_run_logger()
    logger.info("$ dvc %s", shlex.join(args))
    cmd = [sys.executable, "-m", "dvc", *args]
    tail: deque[str] = deque(maxlen=60)
    lines: list[str] = []
    proc = subprocess.Popen(cmd, cwd=PROJECT, env=_child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            logger.info(line.rstrip())
            tail.append(line)
            lines.append(line)
        code = proc.wait()
    except BaseException:
        proc.terminate()  # a cancelled run must not leave a stage running without its lock holder
        proc.wait()
        raise
    if code != 0:
        raise DvcError(f"dvc {shlex.join(args)} exited with code {code}:\n" + "".join(tail))
    return "".join(lines)


def _default_remote() -> str | None:
    out = subprocess.run([sys.executable, "-m", "dvc", "remote", "default"], cwd=PROJECT,
                         env=_child_env(), capture_output=True, text=True)
    # `dvc remote default` exits 1 ("No default remote set") when there is none.
    return out.stdout.strip() if out.returncode == 0 else None


def _git_remote(name: str) -> bool:
    out = subprocess.run(["git", "remote"], cwd=PROJECT, capture_output=True, text=True)
    return name in out.stdout.split()


reproduce = task(_dvc, name="dvc-reproduce", cache_policy=NO_CACHE)
# Pushing is network I/O to object storage: worth retrying; reproducing is not.
push = task(_dvc, name="dvc-push", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=30)


@flow(name="pipeline")
def pipeline(targets: list[str] | None = None, experiment: str | None = None,
             set_params: dict[str, Any] | None = None, push_outputs: bool = True,
             git_remote: str = "origin") -> dict[str, Any]:
    """Reproduce the pipeline through DVC, then push to the DVC remote when one is configured.

    Args:
        targets: stages to reproduce (with their upstream stages); empty means all of dvc.yaml.
        experiment: run as ``dvc exp run --name <experiment>`` instead of ``dvc repro``.
        set_params: params overrides (``{"base.profile": "gpu"}``), applied through ``dvc exp run -S``.
        push_outputs: push outputs (and the experiment) when a default DVC remote exists.
        git_remote: git remote receiving the experiment's ref on ``dvc exp push``.
    """
    logger = get_run_logger()
    targets, set_params = list(targets or []), dict(set_params or {})
    reproduce(dvc_command(targets, experiment, set_params))
    summary: dict[str, Any] = {"targets": targets, "experiment": experiment, "pushed_to": None}
    remote = _default_remote() if push_outputs else None
    if remote is None:
        logger.info("no push: %s", "push_outputs is off" if not push_outputs else "no default DVC remote")
        return summary
    push(["push", "--with-deps", *targets] if targets else ["push"])
    summary["pushed_to"] = remote
    if experiment and _git_remote(git_remote):
        push(["exp", "push", git_remote, experiment])
        summary["experiment_pushed_to"] = git_remote
    elif experiment:
        logger.warning("experiment %r kept local: no git remote %r for its ref (its outputs are "
                       "pushed to %r)", experiment, git_remote, remote)
    return summary


if __name__ == "__main__":
    pipeline()
