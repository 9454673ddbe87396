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
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.resources import Resources

BASE = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}
OL_ENV = ("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT")

spark_env = TaskEnvironment(name="ol_spark", plugin_config=Spark(spark_conf=dict(BASE)))
user_env = TaskEnvironment(name="ol_spark_user",
                           plugin_config=Spark(spark_conf={**BASE, "spark.openlineage.parentJobName": "mine"}))
dask_env = TaskEnvironment(name="ol_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))
ray_env = TaskEnvironment(name="ol_ray", plugin_config=RayJobConfig(
    worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1, requests=Resources(cpu="1"))]))
elastic_env = TaskEnvironment(name="ol_elastic", plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1,
                                                                       max_restarts=0))


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

    @ray_env.task
    def ray_parent() -> dict:
        import ray

        return {"workers": [ray.get(ray.remote(worker_env).remote())], "task": worker_env()}

    @elastic_env.task
    def elastic_parent() -> dict:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        ranks = [None] * dist.get_world_size()
        dist.all_gather_object(ranks, {**worker_env(), "pid": os.getpid()})
        return {"workers": ranks}

    spark_parent() >> spark_user_key() >> dask_parent() >> ray_parent() >> elastic_parent()


lineage_dag()
