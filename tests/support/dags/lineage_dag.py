"""OpenLineage (docs/lineage.md): what each engine's job is told of its Airflow parent.

Run by tests/engines/test_lineage.py in a child process whose [openlineage] settings (file transport,
the two switches) are set in its environment.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark

BASE = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
OL_ENV = ("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT")

spark_env = TaskEnvironment(name="ol_spark", plugin_config=Spark(spark_conf=dict(BASE)))
user_env = TaskEnvironment(name="ol_spark_user",
                           plugin_config=Spark(spark_conf={**BASE, "spark.openlineage.parentJobName": "mine"}))
dask_env = TaskEnvironment(name="ol_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))


def openlineage_conf() -> dict[str, str]:
    """The session's spark.openlineage.* properties (as Spark's OpenLineage listener reads them)."""
    conf = ctx().data["spark_session"].sparkContext.getConf()
    return {key: value for key, value in conf.getAll() if key.startswith("spark.openlineage.")}


def worker_env() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in OL_ENV}


@dag(dag_id="lineage_dag", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test"])
def lineage_dag():
    @spark_env.task
    def spark_parent() -> dict:
        return openlineage_conf()

    @user_env.task
    def spark_user_key() -> dict:
        return openlineage_conf()

    @dask_env.task
    def dask_parent() -> dict:
        client = ctx().data["dask_client"]
        return {"workers": list(client.run(worker_env).values()), "task": worker_env()}

    spark_parent() >> spark_user_key() >> dask_parent()


lineage_dag()
