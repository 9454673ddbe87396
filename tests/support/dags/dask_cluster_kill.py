"""A Dask task on the test scheduler (connection from the test) that waits on a submitted function
until it is killed (SIGTERM teardown test).

The task submits through a bare ``Client()`` of its own (the hook must close that one too) and
writes ``info.json`` (its pid, its clients' ids, the future's key). The function writes
``started-<pid>.json`` on the worker, then sleeps until ``stop`` appears in ``FLYTE_TEST_KILL_DIR``
(or ``SLEEP_S`` passes): a Dask worker cannot stop a running thread, so the test ends it so.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ctx
from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask

CONN = "flyte_test_dask"
KEY_PREFIX = "flyte-cluster-kill-"
SLEEP_S = 240


def write_json(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.rename(path)


def sleep_on_cluster(scratch: str) -> int:
    """Runs on a Dask worker: say where, sleep until told to stop."""
    folder = Path(scratch)
    write_json(folder / f"started-{os.getpid()}.json", {"pid": os.getpid()})
    deadline = time.monotonic() + SLEEP_S
    while time.monotonic() < deadline and not (folder / "stop").exists():
        time.sleep(0.2)
    return os.getpid()


def wait_on_cluster() -> None:
    from distributed import Client

    scratch = os.environ["FLYTE_TEST_KILL_DIR"]
    client = Client()  # the user's own client on the connection's scheduler
    key = f"{KEY_PREFIX}{uuid.uuid4().hex}"
    future = client.submit(sleep_on_cluster, scratch, key=key, pure=False)
    write_json(Path(scratch) / "info.json", {
        "task_pid": os.getpid(), "key": key,
        "client_ids": sorted({client.id, ctx().data["dask_client"].id}),
    })
    future.result()


@dag(dag_id="dask_cluster_kill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def dask_cluster_kill():
    FlyteDaskOperator(task_id="wait_on_cluster", python_callable=wait_on_cluster, plugin_config=Dask(),
                      conn_id=CONN)


dask_cluster_kill()
