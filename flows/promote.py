"""Promote the registered ``challenger`` to ``champion`` when it beats the champion (not a DVC stage).

    python -m flows.promote

Reads ``registry`` from params.yaml. The challenger's log-likelihood mean accuracy (its 95%
interval's lower end) must beat chance and the majority baseline, and the paired bootstrap against
the champion on the same problems must have its lower end above ``min_improvement``
(``tasks/evaluate/registry.py``). Running it twice changes nothing the second time.
The decision and its reason are logged and written as the challenger version's ``promotion`` tag
(and the registered model's ``last_promotion`` tag).
"""
from __future__ import annotations

import flows  # noqa: F401  (sets PREFECT_HOME before Prefect is imported)

import mlflow
from prefect import flow, get_run_logger

from tasks.evaluate import registry
from tasks.common.errors import InputError, run_stage
from tasks.common.params import Registry, load_params
from tasks.common.tracking import tracking_uri


@flow(name="promote")
def promote_flow() -> registry.Decision:
    r = load_params().registry or Registry()
    mlflow.set_tracking_uri(tracking_uri())
    try:
        decision = registry.promote(r.model_name, r.min_improvement)
    except ValueError as err:
        raise InputError(tracking_uri(), f"registered model {r.model_name!r}", str(err)) from None
    get_run_logger().info("%s: challenger v%s, champion v%s: %s", r.model_name, decision.challenger,
                          decision.champion, decision.reason)
    return decision


if __name__ == "__main__":
    run_stage(promote_flow)
