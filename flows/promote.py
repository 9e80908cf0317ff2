"""Promote the registered ``challenger`` to ``champion`` when it beats the champion (not a DVC stage).

    python -m flows.promote [--dry-run]      # or: omicsforge promote [--dry-run]

Reads ``registry`` from params.yaml. The challenger's log-likelihood mean accuracy (its 95%
interval's lower end) must beat chance and the majority baseline, and the paired bootstrap against
the champion on the same problems must have its lower end above ``min_improvement``
(``tasks/evaluate/registry.py``). Running it twice changes nothing the second time.
The decision and its reason are logged and written as the challenger version's ``promotion`` tag
(and the registered model's ``last_promotion`` tag). ``--dry-run`` says what would happen and
changes nothing.
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import argparse

import mlflow
from prefect import flow, get_run_logger

from tasks.evaluate import registry
from tasks.common.errors import InputError, run_stage
from tasks.common.params import Registry, load_params
from tasks.common.tracking import tracking_uri


@flow(name="promote")
def promote_flow(dry_run: bool = False) -> registry.Decision:
    r = load_params().registry or Registry()
    mlflow.set_tracking_uri(tracking_uri())
    try:
        decision = registry.promote(r.model_name, r.min_improvement, dry_run=dry_run)
    except ValueError as err:
        raise InputError(tracking_uri(), f"registered model {r.model_name!r}", str(err)) from None
    get_run_logger().info("%s: challenger v%s, champion v%s: %s", r.model_name, decision.challenger,
                          decision.champion, decision.reason)
    return decision


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.promote", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="say what would happen; change nothing")
    run_stage(promote_flow, dry_run=parser.parse_args(argv).dry_run)


if __name__ == "__main__":
    main()
