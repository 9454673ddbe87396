"""The seed page's four examples, ported, for Kubernetes (tests/kubernetes/test_dags.py).

Each task imports the helper package ``remote_helpers`` from the DAG folder, on the driver and in
the engine's workers. ``FLYTE_TEST_CONN_ID`` names the kubernetes connection; unset, the same DAG
runs locally. ``k8s_slow`` holds a task that outlives its ``execution_timeout``.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None
IMAGE = "sim/venv:1"  # the simulator's image is this machine's venv

spark_env = TaskEnvironment(name="spark_env", image=IMAGE, conn_id=CONN_ID,
                            plugin_config=Spark(spark_conf={"spark.executor.instances": "2",
                                                            "spark.executor.memory": "512m"}))
ray_env = TaskEnvironment(name="ray_env", image=IMAGE, conn_id=CONN_ID,
                          plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="ray-group",
                                                                                           replicas=1)]))
dask_env = TaskEnvironment(name="dask_env", image=IMAGE, conn_id=CONN_ID,
                           plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))
torch_env = TaskEnvironment(name="torch_env", image=IMAGE, conn_id=CONN_ID,
                            plugin_config=Elastic(nnodes=2, nproc_per_node=1, max_restarts=3))


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def k8s_seed():
    @spark_env.task
    async def process_data() -> int:
        import remote_helpers

        spark = ctx().data["spark_session"]
        rows = spark.sparkContext.parallelize(range(1, 1000), 2).map(remote_helpers.square).count()
        return int(rows)

    @ray_env.task
    def ray_squares(n: int) -> list[int]:
        import ray
        import remote_helpers

        square = ray.remote(remote_helpers.square)
        return list(ray.get([square.remote(i) for i in range(n)]))

    @dask_env.task
    def dask_workers_and_square(x: int) -> dict[str, int]:
        import remote_helpers
        from distributed import Client

        client = Client()  # a bare Client() reaches the task's cluster
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        return {"workers": workers, "square": client.submit(remote_helpers.square, x).result()}

    @torch_env.task
    def train_model(epochs: int) -> dict[str, int]:
        import remote_helpers
        import torch
        import torch.distributed as dist

        dist.init_process_group("gloo")
        try:
            value = torch.tensor([float(dist.get_rank() + 1)])
            for _ in range(epochs):
                dist.all_reduce(value)
            return remote_helpers.describe(int(value.item()), dist.get_world_size())
        finally:
            dist.destroy_process_group()

    process_data()
    ray_squares(3)
    dask_workers_and_square(4)
    train_model(epochs=1)


k8s_seed()


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def k8s_slow():
    @dask_env.task(execution_timeout=timedelta(seconds=float(os.environ.get("FLYTE_TEST_TIMEOUT_S", "20"))))
    def outlives_its_timeout() -> None:
        import time

        time.sleep(600)

    outlives_its_timeout()


k8s_slow()
