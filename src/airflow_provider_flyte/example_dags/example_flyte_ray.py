"""The flyte-sdk Ray example, ported to Airflow: square numbers with ``@ray.remote`` tasks.

Runs on the Airflow worker: the task gets a private local Ray instance sized by the
head and worker groups (capped to the machine), shut down when the task ends.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(ray_start_params={"log-color": "True"}),
    worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
    # The seed also sets runtime_env={"pip": ["numpy", "pandas"]}. Ray installs such packages
    # into a fresh virtualenv when the job starts, which needs a package index; left out so
    # the example runs offline on the worker's own environment. Add it back on a cluster.
)

ray_env = TaskEnvironment(
    name="ray_env",
    plugin_config=ray_config,
    image="my-ray-image",
)


@dag(dag_id="example_flyte_ray", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "ray", "example"])
def example_flyte_ray():
    @ray_env.task
    async def ray_task(n: int = 3) -> list[int]:
        import ray  # imported in the task: parsing the DAG file does not load Ray

        @ray.remote
        def square(x):
            return x * x

        futures = [square.remote(i) for i in range(n)]
        return ray.get(futures)

    ray_task()


example_flyte_ray()
