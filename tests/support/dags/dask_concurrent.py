"""Two Dask DAGs for running side by side in two processes: each waits until the other's cluster is up."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

env = TaskEnvironment(name="dask_concurrent", plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))


def _make(name: str, other: str):
    @dag(dag_id=f"dask_concurrent_{name}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         tags=["test", "dask"])
    def concurrent():
        @env.task
        def compute() -> dict:
            from distributed import Client

            client = Client()
            folder = Path(os.environ["FLYTE_TEST_DIR"])
            address = client.scheduler.address
            (folder / f"{name}.up").write_text(address)
            deadline = time.monotonic() + 240
            while not (folder / f"{other}.up").exists():  # both clusters are up at the same time
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the other DAG ({other}) never started its cluster")
                time.sleep(0.2)
            result = {
                "address": address,
                "other_address": (folder / f"{other}.up").read_text(),
                "workers": len(client.scheduler_info()["workers"]),
                "total": client.submit(sum, client.map(lambda x: x + 1, range(10))).result(),
            }
            (folder / f"{name}.json").write_text(json.dumps(result))
            return result

        compute()

    return concurrent()


dask_concurrent_a = _make("a", "b")
dask_concurrent_b = _make("b", "a")
