"""One DAG, three places: FLYTE_TEST_CONN_ID picks local (unset), an existing Dask scheduler, or Kubernetes.

Only the connection changes; the task code and config are the same (tests/kubernetes/test_three_places.py).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

env = TaskEnvironment(
    name="three_places",
    image="sim/venv:1",  # used only on Kubernetes
    plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)),
    conn_id=os.environ.get("FLYTE_TEST_CONN_ID") or None,
)


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def three_places():
    @env.task
    def workers_and_square(x: int) -> dict[str, int]:
        import remote_tasks

        return remote_tasks.dask_workers_and_square(x)

    workers_and_square(5)


three_places()
