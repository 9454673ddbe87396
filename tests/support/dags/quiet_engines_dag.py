"""One successful task per engine, each given a planted secret under a sensitive key (issue 13).

The secret comes from ``$FLYTE_TEST_PLANTED_SECRET`` when the DAG file is parsed; each task
returns a hash of the value its engine saw, never the value.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime

from airflow.sdk import dag

import airflow_provider_flyte as flyte
from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.resources import Resources

SECRET = os.environ.get("FLYTE_TEST_PLANTED_SECRET", "not-planted")


def digest(value: str | None) -> str:
    return hashlib.sha256((value or "").encode()).hexdigest()


@dag(dag_id="quiet_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def quiet_spark():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"},
                                    hadoop_conf={"fs.s3a.secret.key": SECRET}))
    def spark_secret() -> dict:
        session = ctx().data["spark_session"]
        hadoop = session.sparkContext._jsc.hadoopConfiguration()
        count = session.range(10).count()
        return {"sha256": digest(hadoop.get("fs.s3a.secret.key")), "count": count}

    spark_secret()


@dag(dag_id="quiet_ray", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def quiet_ray():
    @flyte_task(plugin_config=RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1, requests=Resources(cpu="1"))],
        runtime_env={"env_vars": {"SERVICE_API_TOKEN": SECRET}},
    ))
    def ray_secret() -> dict:
        import ray

        @ray.remote
        def seen() -> str:
            return os.environ.get("SERVICE_API_TOKEN", "")

        return {"sha256": digest(ray.get(seen.remote()))}

    ray_secret()


env = flyte.TaskEnvironment(name="quiet_dask", env_vars={"DB_PASSWORD": SECRET})


@dag(dag_id="quiet_dask", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def quiet_dask():
    @env.task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=2, resources=Resources(cpu="1"))))
    def dask_secret() -> dict:
        from distributed import Client

        client = ctx().data["dask_client"]
        workers = len(Client().scheduler_info()["workers"])  # a client of the task's own, left open
        return {"sha256": digest(client.submit(os.environ.get, "DB_PASSWORD").result()), "workers": workers}

    dask_secret()


elastic_env = flyte.TaskEnvironment(name="quiet_elastic", env_vars={"WANDB_API_KEY": SECRET})


@dag(dag_id="quiet_elastic", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def quiet_elastic():
    @elastic_env.task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1))
    def elastic_secret() -> dict:
        return {"sha256": digest(os.environ.get("WANDB_API_KEY")), "world_size": int(os.environ["WORLD_SIZE"])}

    elastic_secret()


quiet_spark()
quiet_ray()
quiet_dask()
quiet_elastic()
