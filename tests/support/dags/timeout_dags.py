"""One DAG per engine whose task outlives its ``execution_timeout`` inside the engine (timeout tests).

As Airflow runs each task instance in a process of its own, the tests run each DAG in its own process.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark

SLOW_START = timedelta(seconds=45)  # Spark and Ray start in 10-30 s on a loaded 2-CPU machine
FAST_START = timedelta(seconds=25)


def _started(engine: str) -> None:
    """Mark that the engine is up and the function is about to block in it."""
    Path(os.environ["FLYTE_TEST_TIMEOUT_DIR"], f"{engine}.started").write_text(str(time.time()))


def _dag(engine: str):
    return dag(dag_id=f"timeout_{engine}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)


@_dag("spark")
def timeout_spark():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.master": "local[1]"}), execution_timeout=SLOW_START)
    def job() -> None:
        sc = ctx().data["spark_session"].sparkContext
        _started("spark")
        sc.parallelize([1], 1).map(lambda _: time.sleep(600)).collect()

    job()


@_dag("ray")
def timeout_ray():
    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)]),
                execution_timeout=SLOW_START)
    def job() -> None:
        import ray

        _started("ray")
        ray.get(ray.remote(lambda: time.sleep(600)).remote())

    job()


@_dag("dask")
def timeout_dask():
    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)), execution_timeout=FAST_START)
    def job() -> None:
        from distributed import Client

        _started("dask")
        Client().submit(time.sleep, 600).result()

    job()


@_dag("elastic")
def timeout_elastic():
    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=0),
                execution_timeout=FAST_START)
    def job() -> None:
        _started(f"elastic-{os.environ['RANK']}")
        time.sleep(600)

    job()


timeout_spark()
timeout_ray()
timeout_dask()
timeout_elastic()
