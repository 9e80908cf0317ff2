"""tasks.common.errors.run_stage: bad input and a Prefect server that never answers are one line."""
import os
import subprocess
import sys

import psutil
import pytest

from tests.conftest import PROJECT

CHILD = """
import flows
from prefect import flow
from tasks.common.errors import InputError, run_stage

@flow(name="probe")
def probe(bad: bool):
    if bad:
        raise InputError("cells.h5ad", "cell 'AAAC-1'", "negative values in raw.X")

if __name__ == "__main__":
    import sys
    run_stage(probe, bad=sys.argv[1] == "bad")
"""


def _run(tmp_path, arg, **env):
    script = tmp_path / "probe.py"
    script.write_text(CHILD)
    full = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    full.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(PROJECT), **env)
    return subprocess.run([sys.executable, str(script), arg], capture_output=True, text=True,
                          env=full, timeout=240, cwd=tmp_path)


def _servers_of(home: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "prefect.server.api.server:create_app" in " ".join(proc.info["cmdline"] or []) \
                    and proc.environ().get("PREFECT_HOME") == home:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def test_server_that_never_answers_is_one_line_and_is_stopped(tmp_path):
    done = _run(tmp_path, "ok", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="0")
    assert done.returncode == 3, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [errors[0]] and "did not answer within 0 s" in errors[0]
    assert "Traceback" not in done.stderr
    assert _servers_of(str(tmp_path / "prefect")) == []


@pytest.mark.slow
def test_stage_without_its_params_section_names_it(tmp_path):
    (tmp_path / "params.yaml").write_text("base: {seed: 0, profile: default}\n")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(tmp_path / "prefect"), PYTHONPATH=str(PROJECT))
    done = subprocess.run([sys.executable, "-m", "flows.corpus"], capture_output=True, text=True,
                          env=env, timeout=300, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: params.yaml: corpus: missing section (the corpus stage needs it)" in done.stderr
    assert "Traceback" not in done.stderr
