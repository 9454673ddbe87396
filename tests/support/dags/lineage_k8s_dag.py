"""OpenLineage on the simulated Kubernetes (docs/lineage.md): the SparkApplication's sparkConf and a DaskJob's
pods carry the task run's parent. Run by tests/kubernetes/test_lineage.py in a child process."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None
IMAGE = "sim/venv:1"  # the simulator's image is this machine's venv
OL_ENV = ("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT")

spark_env = TaskEnvironment(name="ol_k8s_spark", image=IMAGE, conn_id=CONN_ID,
                            plugin_config=Spark(spark_conf={"spark.executor.instances": "1",
                                                            "spark.executor.memory": "512m"}))
dask_env = TaskEnvironment(name="ol_k8s_dask", image=IMAGE, conn_id=CONN_ID,
                           plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))


def worker_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in OL_ENV}


@dag(dag_id="lineage_k8s_dag", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test"])
def lineage_k8s_dag():
    @spark_env.task
    def spark_parent() -> dict:
        conf = ctx().data["spark_session"].sparkContext.getConf()
        return {key: value for key, value in conf.getAll() if key.startswith("spark.openlineage.")}

    @dask_env.task
    def dask_parent() -> dict:
        from distributed import Client

        client = Client()
        client.wait_for_workers(1, timeout=120)
        return {"workers": list(client.run(worker_env).values()), "task": worker_env()}

    spark_parent() >> dask_parent()


lineage_k8s_dag()
