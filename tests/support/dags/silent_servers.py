"""Tasks on servers that accept TCP and never answer (tests/support/silent_server.py): a Dask scheduler, a Spark
Connect server, a standalone Spark master and a Ray GCS address. Connections come from the test (``AIRFLOW_CONN_FLYTE_SILENT_*``);
each task must fail, naming the address, within the connection's ``connect_timeout`` plus the margin.

``silent_servers`` runs the three; ``silent_ray_kill`` only the Ray one (the SIGTERM test).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.operators.ray import FlyteRayOperator
from airflow_provider_flyte.operators.spark import FlyteSparkOperator
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark

DASK_CONN = "flyte_silent_dask"
SPARK_CONN = "flyte_silent_spark"
RAY_CONN = "flyte_silent_ray"
MASTER_CONN = "flyte_silent_master"


def never_runs() -> None:
    raise AssertionError("the task's function ran although its server never answered")


def ray_task() -> FlyteRayOperator:
    return FlyteRayOperator(task_id="ray_gcs", python_callable=never_runs,
                            plugin_config=RayJobConfig(worker_node_config=[]), conn_id=RAY_CONN)


@dag(dag_id="silent_servers", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def silent_servers():
    FlyteDaskOperator(task_id="dask_scheduler", python_callable=never_runs, plugin_config=Dask(), conn_id=DASK_CONN)
    FlyteSparkOperator(task_id="spark_connect", python_callable=never_runs, plugin_config=Spark(),
                       conn_id=SPARK_CONN)
    FlyteSparkOperator(task_id="spark_master", python_callable=never_runs,
                       plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}), conn_id=MASTER_CONN)
    ray_task()


@dag(dag_id="silent_ray_kill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def silent_ray_kill():
    ray_task()


silent_servers()
silent_ray_kill()
