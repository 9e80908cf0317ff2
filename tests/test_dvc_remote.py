"""A DVC remote in a local folder: push, clone elsewhere, pull, and ``dvc repro`` runs nothing.

The same commands work against S3 or GCS once the remote's URL says so (docs/cluster.md); a local
folder is the remote a test can own. Proof that the stage did not run after the pull: DVC says so,
``dvc status`` is clean, the pulled files keep their mtimes, and no MLflow run (not even a store)
appears in the clone.
"""
import subprocess

import pytest

from tests.harness import commit_all, copy_project, project_env, run_dvc

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def test_pull_into_a_clone_then_repro_reuses_the_pushed_outputs(tmp_path):
    project = copy_project(tmp_path)
    remote = tmp_path / "remote-storage"
    run_dvc(project, "remote", "add", "-d", "storage", str(remote))
    run_dvc(project, "repro", "corpus")
    pushed = run_dvc(project, "push", "corpus")
    assert "pushed" in pushed.stdout, pushed.stdout
    assert any(p.is_file() for p in remote.rglob("*"))
    commit_all(project, "corpus built, remote storage configured")

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    env = project_env(clone)
    assert not (clone / "data" / "corpus").exists()
    run_dvc(clone, "pull", "corpus", env=env)
    files = sorted((clone / "data" / "corpus").glob("*.parquet"))
    assert [f.name for f in files] == sorted(f.name for f in (project / "data" / "corpus").glob("*.parquet"))
    mtimes = {f: f.stat().st_mtime_ns for f in files}

    repro = run_dvc(clone, "repro", "corpus", env=env)
    assert "Stage 'corpus' didn't change, skipping" in repro.stdout, repro.stdout
    assert "Running stage" not in repro.stdout
    assert "up to date" in run_dvc(clone, "status", "corpus", env=env).stdout
    assert {f: f.stat().st_mtime_ns for f in files} == mtimes
    assert not (clone / "mlflow.db").exists()  # the stage never opened its MLflow run
