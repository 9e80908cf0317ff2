"""The omicsforge command line: help that fits the terminal, flags shown as flags, promote."""
import os
import subprocess
import sys

from typer.testing import CliRunner

from tasks.cli import app
from tests.conftest import PROJECT


def test_help_is_as_wide_as_the_terminal_and_flags_take_no_value():
    out = CliRunner().invoke(app, ["textify", "cells", "--help"], env={"COLUMNS": "160"}, terminal_width=160)
    assert out.exit_code == 0
    assert "--expect-counts / --no-expect-counts" in out.output and "<bool>" not in out.output
    line = next(x for x in out.output.splitlines() if x.lstrip().startswith("--gene-symbols"))
    assert line.rstrip().endswith("default var_names.")  # one line, not wrapped at 80 columns
    assert "--obs-key COLUMN" in out.output


def test_promote_help_lists_the_dry_run_and_runs_nothing():
    out = CliRunner().invoke(app, ["promote", "--help"])
    assert out.exit_code == 0 and "--dry-run" in out.output and "champion" in out.output
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    module = subprocess.run([sys.executable, "-m", "flows.promote", "--help"], cwd=PROJECT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert module.returncode == 0 and "--dry-run" in module.stdout
    assert "Flow run" not in module.stdout + module.stderr  # help, not a promotion
