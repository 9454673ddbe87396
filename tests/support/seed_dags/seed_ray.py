# ruff: noqa  (the seed page's code as printed: only its import lines are changed)
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
import ray
import airflow_provider_flyte as flyte

ray_config = RayJobConfig(
    head_node_config=HeadNodeConfig(ray_start_params={"log-color": "True"}),
    worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)],
    runtime_env={"pip": ["numpy", "pandas"]},
)

ray_env = flyte.TaskEnvironment(
    name="ray_env",
    plugin_config=ray_config,
    image="my-ray-image",
)

@ray_env.task
async def ray_task(n: int = 3) -> list[int]:
    @ray.remote
    def square(x):
        return x * x

    futures = [square.remote(i) for i in range(n)]
    return ray.get(futures)


# -- not on the seed page: the DAG that runs it --------------------------------------------------
from datetime import datetime  # noqa: E402

from airflow.sdk import DAG  # noqa: E402

with DAG("seed_ray", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    ray_task()
