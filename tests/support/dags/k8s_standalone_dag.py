"""DAGs for the deferral tests on a real ``airflow standalone`` (tests/kubernetes/test_standalone.py).

``FLYTE_TEST_CONN_ID`` names the simulated cluster's kubernetes connection.

- ``k8s_deferred_spark``: the seed's Spark count, deferred to the triggerer while its
  SparkApplication runs.
- ``k8s_sleeper``: a Dask job that sleeps ``params.seconds`` then answers, deferred: marked
  failed while deferred, or waited on across a triggerer restart.
- ``k8s_sleeper_in_worker``: the same job waited on in the worker (``deferrable=False``), with
  one retry: its worker is SIGKILLed and the retry must reattach to the same DaskJob.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import Param, dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None
IMAGE = "sim/venv:1"  # the simulator's image is this machine's venv

spark_env = TaskEnvironment(name="spark_env", image=IMAGE, conn_id=CONN_ID,
                            plugin_config=Spark(spark_conf={"spark.executor.instances": "1",
                                                            "spark.executor.memory": "512m"}))
dask_env = TaskEnvironment(name="dask_env", image=IMAGE, conn_id=CONN_ID,
                           plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))

SECONDS = {"seconds": Param(30, type="integer", minimum=1, maximum=900)}


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def k8s_deferred_spark():
    @spark_env.task
    def count_rows() -> int:
        spark = ctx().data["spark_session"]
        return int(spark.sparkContext.parallelize(range(1, 1000), 2).count())

    count_rows()


k8s_deferred_spark()


def _sleep_then_answer(seconds: int) -> int:
    import time

    time.sleep(int(seconds))
    return int(seconds)


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params=SECONDS)
def k8s_sleeper():
    @dask_env.task
    def sleep_then_answer(seconds: int) -> int:
        return _sleep_then_answer(seconds)

    sleep_then_answer("{{ params.seconds }}")


k8s_sleeper()


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False, params=SECONDS)
def k8s_sleeper_in_worker():
    @dask_env.task(deferrable=False, retries=1, retry_delay=timedelta(seconds=1))
    def sleep_then_answer(seconds: int) -> int:
        return _sleep_then_answer(seconds)

    sleep_then_answer("{{ params.seconds }}")


k8s_sleeper_in_worker()
