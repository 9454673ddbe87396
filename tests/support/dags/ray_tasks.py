"""Ray tasks in every spelling (and the classic operator, failing), a worker importing a DAG-folder helper."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag, task
from helpers import ray_util

from airflow_provider_flyte import Resources, TaskEnvironment, flyte_task
from airflow_provider_flyte.operators.ray import FlyteRayOperator
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

config = RayJobConfig(
    head_node_config=HeadNodeConfig(requests=Resources(cpu="1")),
    worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1, requests=Resources(cpu="1"))],
    runtime_env={"env_vars": {"FLYTE_RAY_TEST_VAR": "from-runtime-env"}},
)
ray_env = TaskEnvironment(name="ray_tasks", plugin_config=config)
# Rendered at run time from the DAG's params: a head of 1 CPU and no workers -> 1 CPU.
templated = RayJobConfig(
    head_node_config=HeadNodeConfig(requests=Resources(cpu="1")),
    worker_node_config=[WorkerNodeConfig(group_name="workers", replicas="{{ params.workers }}")],
)


def squared_and_shifted(x: int) -> int:
    """Defined in the DAG file: reaches Ray workers only when pickled by value."""
    return ray_util.shift(x * x)


@dag(dag_id="ray_tasks", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"workers": Param(0, type="integer", minimum=0)})
def ray_tasks():
    @flyte_task(plugin_config=config)
    def via_flyte_task() -> dict:
        import ray

        @ray.remote
        def in_worker(x: int) -> dict:
            from helpers import ray_util as util  # imported in the Ray worker, from the DAG folder

            return {"value": util.shift(x), **util.where(),
                    "env": os.environ.get("FLYTE_RAY_TEST_VAR")}

        probe = ray_util.write_probe("via_flyte_task")
        out = ray.get(in_worker.remote(1))
        return {**out, "task_pid": os.getpid(), "num_cpus": probe["num_cpus"]}

    @ray_env.task
    async def via_env_task(n: int = 3) -> list[int]:
        import ray

        ray_util.write_probe("via_env_task")
        return ray.get([ray.remote(squared_and_shifted).remote(i) for i in range(n)])

    @task.flyte(env=ray_env, plugin_config=templated)
    def via_task_flyte() -> int:
        import ray

        ray_util.write_probe("via_task_flyte")
        return ray.get(ray.remote(lambda: ray_util.shift(2)).remote())

    def fails() -> None:
        import ray

        ray_util.write_probe("fails")
        ray.get(ray.remote(lambda: 1).remote())
        raise RuntimeError("this Ray task fails on purpose")

    via_flyte_task()
    via_env_task()
    via_task_flyte()
    FlyteRayOperator(task_id="fails", python_callable=fails, plugin_config=config)


ray_tasks()
