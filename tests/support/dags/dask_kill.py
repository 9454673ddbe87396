"""A Dask task that records its cluster, then waits on a long Dask future until it is killed (SIGTERM to the DAG process)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

env = TaskEnvironment(name="dask_kill", plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))


@dag(dag_id="dask_kill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "dask"])
def dask_kill():
    @env.task
    def sleeper() -> None:
        from distributed import Client

        client = Client()
        assert client.submit(lambda: 1).result() == 1
        info = {"worker_pids": sorted(client.run(os.getpid).values()), "task_pid": os.getpid(),
                "scheduler": ctx().data["dask_client"].scheduler.address}
        ready = Path(os.environ["FLYTE_TEST_READY_FILE"])
        ready.with_suffix(".tmp").write_text(json.dumps(info))
        ready.with_suffix(".tmp").rename(ready)
        client.submit(time.sleep, 600).result()  # blocks until the cluster is torn down under it

    sleeper()


dask_kill()
