"""When a DAG run ends, stop its ``scope="run"`` warm servers on this machine (no engine is imported)."""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    _stop(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    _stop(dag_run)


def _stop(dag_run: Any) -> None:
    from airflow_provider_flyte.warm.run_end import stop_run

    try:
        stopped = stop_run(str(dag_run.dag_id), str(dag_run.run_id))
    except Exception as exc:  # a listener must never fail the DAG run; idle_ttl still stops the server
        log.warning("Could not stop the warm servers of DAG run %s/%s: %s", dag_run.dag_id, dag_run.run_id, exc)
        return
    for name in stopped:
        log.info("DAG run %s/%s ended: stopping its warm server %s", dag_run.dag_id, dag_run.run_id, name)
