"""``scope="run"`` servers end with their DAG run.

A run-scoped server's record holds its DAG run's key. When the run ends (success or failure),
:func:`stop_run` asks the supervisors of that run's servers on this machine to stop them; it does
not wait (it runs in the scheduler, or in the ``dag.test()`` process, through the listener in
:mod:`airflow_provider_flyte.listeners.warm_run_end`). Where the run ended on another machine than
the one holding the server (a remote executor), ``idle_ttl`` stops it as any idle server.
"""

from __future__ import annotations

from airflow_provider_flyte.warm import state
from airflow_provider_flyte.warm.supervisor import request_stop


def dag_run_key(dag_id: str, run_id: str) -> str:
    """The key a ``scope="run"`` server is recorded (and fingerprinted) under."""
    return f"{dag_id}/{run_id}"


def stop_run(dag_id: str, run_id: str, *, wait_s: float = 0.0) -> list[str]:
    """Stop the warm servers of this DAG run on this machine; return their names."""
    base = state.root(create=False)
    if not base.is_dir():  # no warm server ever ran here: create nothing
        return []
    key = dag_run_key(dag_id, run_id)
    with state.locked(base):
        mine = [(folder, record) for folder, record in state.servers(base) if record.run_key == key]
    return request_stop(mine, wait_s=wait_s)
