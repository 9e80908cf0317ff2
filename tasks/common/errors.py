"""One-line errors for bad input, and the entry point every stage's ``__main__`` goes through.

>>> str(InputError("cells.h5ad", "cell 'AAAC-1'", "negative values in raw.X"))
"cells.h5ad: cell 'AAAC-1': negative values in raw.X"
"""
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from tasks.common.params import ParamsError


class InputError(ValueError):
    """Bad input: names the file, the record and the problem."""

    def __init__(self, file: object, record: object, problem: str):
        self.file, self.record, self.problem = str(file), str(record), problem
        super().__init__(f"{self.file}: {self.record}: {problem}")


class _NoTracebackForInputErrors(logging.Filter):
    # Prefect logs a failed task with its traceback; for bad input the one line is the message.
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], (InputError, ParamsError)):
            record.exc_info, record.exc_text = None, None
        return True


SERVER_TIMEOUT = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def _stop_temporary_servers() -> None:
    # A temporary server that answered too late is still starting: stop it now rather than leave it
    # to outlive the stage (Prefect keeps its instances in a private class dict; stop() is public).
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(SubprocessASGIServer._instances.values()):
        server.stop()


def run_stage(flow: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """Run a stage flow; bad input or params exit 2 with one line, never a bare traceback.

    A temporary Prefect API server that does not come up in time exits 3 with one line that
    says what to set (the wait is sized for a busy machine in ``flows/__init__.py``).
    """
    quiet = _NoTracebackForInputErrors()
    for handler in logging.getLogger("prefect").handlers + logging.getLogger().handlers:
        handler.addFilter(quiet)
    try:
        flow(*args, **kwargs)
    except (InputError, ParamsError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as err:
        if "ephemeral Prefect API server" not in str(err):
            raise
        _stop_temporary_servers()
        print(f"error: Prefect's temporary API server did not answer within "
              f"{os.environ.get(SERVER_TIMEOUT, '20')} s: raise {SERVER_TIMEOUT} (a busy machine), "
              f"or start one server (make prefect-server) and set PREFECT_API_URL", file=sys.stderr)
        sys.exit(3)
