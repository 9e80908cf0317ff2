"""Two ``dvc repro`` at once in one workspace: the second fails on DVC's lock, nothing is corrupted.

The first run is started and, once DVC has taken its lock on the stage's outputs, a second
``dvc repro corpus`` starts. It must exit non-zero with DVC's lock message naming the first run's
process; the first must finish, and its outputs must match ``dvc.lock`` and pass their schemas.
"""
import json
import time

import pytest

from tasks.common import schemas
from tasks.common.storage import read_table
from tests.harness import VENV_BIN, copy_project, project_env, run_dvc, start, stop

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

LOCK_MESSAGES = ("is busy, it is being blocked by", "Unable to acquire lock")


def _stage_locked(project):
    try:
        locks = json.loads((project / ".dvc" / "tmp" / "rwlock").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    return bool(locks.get("write"))


def test_second_repro_fails_on_the_lock_and_the_first_finishes_intact(tmp_path):
    project = copy_project(tmp_path)
    env = project_env(project)
    log = tmp_path / "first.log"
    first = start([str(VENV_BIN / "dvc"), "repro", "corpus"], cwd=project, env=env, log=log)
    try:
        deadline = time.monotonic() + 120
        while not _stage_locked(project):
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the first dvc repro never locked its stage"
            time.sleep(0.2)
        second = run_dvc(project, "repro", "corpus", env=env, check=False)
        assert first.poll() is None, "the first run must still be running when the second fails"
        message = second.stdout + second.stderr
        assert second.returncode != 0, message
        assert any(m in message for m in LOCK_MESSAGES), message
        if LOCK_MESSAGES[0] in message:  # the lock on the stage's outputs names its holder
            assert f"PID {first.pid}" in message, message
        assert first.wait(600) == 0, log.read_text()
    finally:
        stop(first)

    assert "up to date" in run_dvc(project, "status", "corpus", env=env).stdout
    assert len(read_table(project / "data" / "corpus" / "documents.parquet", schemas.Documents)) > 0
    assert len(read_table(project / "data" / "corpus" / "hpo_terms.parquet", schemas.HpoTerms)) > 0
