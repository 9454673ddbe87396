"""DAG for the durable-reattach tests on a real ``airflow standalone`` (tests/kubernetes/test_durable_reattach.py).

``k8s_durable_in_worker``: a Dask job that sleeps ``params.seconds`` then answers, waited on in the
worker (``deferrable=False``) with one retry 20 s after a failure: long enough for the test to act on
the cluster (or for the job to end) between the worker's SIGKILL and the retry.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None

dask_env = TaskEnvironment(name="dask_env", image="sim/venv:1", conn_id=CONN_ID,
                           plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"seconds": Param(5, type="integer", minimum=1, maximum=900)})
def k8s_durable_in_worker():
    @dask_env.task(deferrable=False, retries=1, retry_delay=timedelta(seconds=20))
    def sleep_then_answer(seconds: int) -> int:
        import time

        time.sleep(int(seconds))
        return int(seconds)

    sleep_then_answer("{{ params.seconds }}")


k8s_durable_in_worker()
