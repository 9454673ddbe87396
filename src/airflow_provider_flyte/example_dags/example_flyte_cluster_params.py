"""Let operators size the cluster from the UI trigger form.

Each knob is a DAG ``Param`` with a JSON Schema (bounds or a list of choices), so the
trigger form renders a validated field and an out-of-range value is refused before
the run is created. Plugin configs read the knobs with ``{{ params.<name> }}``
templates; the provider converts the rendered text to each field's type and validates
it again. Extra keys sent in a trigger's ``conf`` never reach an engine.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, ctx, flyte_task
from airflow_provider_flyte.params import (
    dask_workers,
    elastic_nproc_per_node,
    ray_workers,
    spark_executor_memory,
    spark_executors,
)
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark


@dag(
    dag_id="example_flyte_cluster_params",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["flyte", "params", "example"],
    params={
        "executors": spark_executors(default=2, maximum=8),
        "executor_memory": spark_executor_memory(default="512m", values=("512m", "1g", "2g")),
        "ray_workers": ray_workers(default=1, maximum=2),
        "dask_workers": dask_workers(default=2, maximum=4),
        "nproc_per_node": elastic_nproc_per_node(default=1, maximum=2),
    },
)
def example_flyte_cluster_params():
    @flyte_task(plugin_config=Spark(spark_conf={
        "spark.executor.instances": "{{ params.executors }}",
        "spark.executor.memory": "{{ params.executor_memory }}",
        "spark.ui.enabled": "false",
    }))
    def spark_sized() -> dict:
        conf = ctx().data["spark_session"].sparkContext.getConf()
        return {
            "spark.executor.instances": conf.get("spark.executor.instances"),
            "spark.executor.memory": conf.get("spark.executor.memory"),
            "spark.driver.extraJavaOptions": conf.get("spark.driver.extraJavaOptions", None),
        }

    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[
        WorkerNodeConfig(group_name="workers", replicas="{{ params.ray_workers }}",
                         requests=Resources(cpu="1")),
    ]))
    def ray_sized() -> dict:
        import ray

        # Locally the worker groups share one Ray node, capped to this machine's CPUs: report the
        # replicas the run was configured with too.
        workers = ctx().spec.config["worker_node_config"][0]["replicas"]
        return {"cpus": ray.cluster_resources().get("CPU"), "workers": workers}

    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers="{{ params.dask_workers }}",
                                                       resources=Resources(cpu="1", memory="512Mi"))))
    def dask_sized() -> dict:
        from distributed import Client

        return {"workers": len(Client().scheduler_info()["workers"])}

    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node="{{ params.nproc_per_node }}", monitor_interval=1))
    def elastic_sized() -> dict:
        import os

        return {"world_size": int(os.environ["WORLD_SIZE"])}

    spark_sized()
    ray_sized()
    dask_sized()
    elastic_sized()


example_flyte_cluster_params()
