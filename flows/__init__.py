"""One Prefect flow per pipeline stage; ``python -m flows.<stage>`` is each DVC stage's command."""
import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent
# Prefect reads PREFECT_HOME at import: keep its database in the project, not in ~/.prefect,
# where another Prefect version's migrations would break this one.
os.environ.setdefault("PREFECT_HOME", str(_PROJECT / ".prefect"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Each stage starts a temporary Prefect API server unless PREFECT_API_URL names one. Prefect waits
# 20 s for it; on a machine whose cores are busy (a test suite beside a dvc repro) it can take
# longer, so wait up to 3 minutes (tasks/common/errors.run_stage turns a timeout into one line).
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
