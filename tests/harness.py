"""Run the project as a user would, in a throwaway copy: ``dvc``, Prefect and MLflow servers.

End-to-end tests never touch the checkout they run from. :func:`copy_project` copies the files git
knows about (tracked, plus untracked ones not ignored) into a temporary folder, makes it its own git
repository on the smoke profile, and :func:`project_env` gives child processes an environment that
keeps every store (MLflow database, ``PREFECT_HOME``) inside that copy. Background servers start in
their own process group so :func:`stop` ends them and everything they spawned.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import yaml

PROJECT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def copy_project(tmp_path: Path, profile: str = "smoke", name: str = "project") -> Path:
    """Copy the repository's files into ``tmp_path/name``, set ``base.profile`` and commit it."""
    listed = _git(PROJECT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    dest = tmp_path / name
    for rel in filter(None, listed):
        src = PROJECT / rel
        if src.is_file():  # a tracked file deleted in the worktree is listed but absent
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params_file = dest / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params.setdefault("base", {})["profile"] = profile
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    _git(dest, "init", "-q", "-b", "main")
    _git(dest, "config", "user.email", "tests@omicsforge.invalid")
    _git(dest, "config", "user.name", "omicsforge tests")
    commit_all(dest, "copy of the project under test")
    return dest


def commit_all(project: Path, message: str) -> None:
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "--allow-empty", "-m", message)


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """Environment for processes run inside ``project``: its venv first, its own stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "DVC_"))}
    env.update(
        PATH=os.pathsep.join([str(VENV_BIN), env.get("PATH", "")]),
        # The venv holds an editable install of the main checkout; the copy must shadow it.
        PYTHONPATH=str(project),
        MLFLOW_TRACKING_URI=f"sqlite:///{project / 'mlflow.db'}",
        PREFECT_HOME=str(project / ".prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        DO_NOT_TRACK="1",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
    )
    env.update(extra)
    return env


def run_dvc(project: Path, *args: str, env: dict[str, str] | None = None, check: bool = True,
            timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``dvc <args>`` inside ``project``; on failure (with ``check``) the error carries its output."""
    proc = subprocess.run([str(VENV_BIN / "dvc"), *args], cwd=project, env=env or project_env(project),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"dvc {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a background process in its own process group, output to ``log``."""
    out: IO[bytes] = open(log, "ab")
    try:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        out.close()  # the child holds its own descriptor


def stop(proc: subprocess.Popen[Any], grace: float = 15) -> None:
    """End ``proc`` and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    except ProcessLookupError:
        pass


def wait_http(url: str, proc: subprocess.Popen[Any], log: Path, timeout: float = 120) -> None:
    """Poll ``url`` until it answers 200; fail early, with the log, if ``proc`` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args} exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def api(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """One JSON call to a REST API (Prefect's), raising with the response body on error."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path}: {err.code} {err.read().decode()[:500]}") from None
    return json.loads(raw) if raw else None


@contextmanager
def prefect_server(home: Path) -> Iterator[dict[str, str]]:
    """A real Prefect server on 127.0.0.1 and a free port, its database in ``home``.

    Yields the environment clients need (``PREFECT_API_URL`` and ``PREFECT_HOME``); the server is
    stopped on exit.
    """
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = project_env(PROJECT, PREFECT_HOME=str(home))
    env.pop("PYTHONPATH")
    log = home / "server.log"
    proc = start([str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                  "--port", str(port)], cwd=home, env=env, log=log)
    url = f"http://127.0.0.1:{port}/api"
    try:
        wait_http(url + "/health", proc, log, timeout=180)
        yield {"PREFECT_API_URL": url, "PREFECT_HOME": str(home)}
    finally:
        stop(proc)
