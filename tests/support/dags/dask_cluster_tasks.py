"""The same Dask code on an existing scheduler (``dask scheduler`` + ``dask worker`` on 127.0.0.1).

The connection comes from the test (``AIRFLOW_CONN_FLYTE_TEST_DASK``). Submitted functions import
``clusterpkg_dask`` (next to this file), which only the code bundle brings to the workers: they run
from a scratch folder with no ``PYTHONPATH``. ``late_worker`` starts one more worker after the task
connected; the bundle must reach it too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

CONN = "flyte_test_dask"
TIMEOUT_S = 120
config = Dask(workers=WorkerGroup(number_of_workers=2))
env = TaskEnvironment(name="dask_cluster", conn_id=CONN, plugin_config=config)


def probe_on_worker(x: int) -> dict:
    """Defined in the DAG file; imports the package next to it on the worker."""
    from clusterpkg_dask import probe

    return probe.where(x)


def _outcome(future) -> dict:
    try:
        return {"ok": True, **future.result(timeout=TIMEOUT_S)}
    except Exception as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[-2000:]}


def on_cluster() -> dict:
    from distributed import Client

    client = Client()  # a bare client: must reach the connection's scheduler
    workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    results = [_outcome(client.submit(probe_on_worker, i, workers=[w], pure=False)) for i, w in enumerate(workers)]
    return {
        "address": client.scheduler.address,
        "same_as_task_client": client.scheduler.address == ctx().data["dask_client"].scheduler.address,
        "workers": workers,
        "results": results,
        "task_pid": os.getpid(),
    }


def late_worker() -> dict:
    """Start a worker after the task connected, run the probe on it, stop it."""
    client = ctx().data["dask_client"]
    before = set(client.scheduler_info(n_workers=-1)["workers"])
    scratch = tempfile.mkdtemp(prefix="flyte-dask-late-")
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DASK_", "PYTHONPATH"))}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dask"), "worker", client.scheduler.address, "--nthreads", "1",
         "--host", "127.0.0.1", "--no-dashboard", "--name", "late", "--local-directory", scratch],
        cwd=scratch, env=worker_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        new: list[str] = []
        while not new and time.monotonic() < deadline:
            time.sleep(0.5)
            new = sorted(set(client.scheduler_info(n_workers=-1)["workers"]) - before)
        if not new:
            return {"ok": False, "error": "the late worker did not join"}
        return {"worker": new[0], **_outcome(client.submit(probe_on_worker, 7, workers=new, pure=False))}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        shutil.rmtree(scratch, ignore_errors=True)


@dag(dag_id="dask_cluster", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def dask_cluster():
    first = FlyteDaskOperator(task_id="on_cluster", python_callable=on_cluster, plugin_config=config, conn_id=CONN)
    later = env.task(task_id="late_worker", trigger_rule="all_done")(late_worker)
    first >> later()


dask_cluster()
