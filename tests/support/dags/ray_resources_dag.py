"""Local Ray and Resources it cannot give (issue 27): GPUs and memory beyond this machine warn; a fit does not."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, TaskEnvironment
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig

#: 16 GPUs and 64 TiB: more than any machine the tests run on gives a local Ray instance.
too_big = TaskEnvironment(
    name="ray_too_big", resources=Resources(cpu="1", memory="64Ti", gpu=16),
    plugin_config=RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu="1")),
        worker_node_config=[WorkerNodeConfig(group_name="gpus", replicas=0, requests=Resources(cpu="1", gpu="A100:2"))],
    ),
)
fits = TaskEnvironment(name="ray_fits", resources=Resources(cpu="1", memory="64Mi"),
                       plugin_config=RayJobConfig(head_node_config=HeadNodeConfig(requests=Resources(cpu="1")),
                                                   worker_node_config=[]))


def _ray_sum() -> int:
    import ray

    @ray.remote
    def one() -> int:
        return 1

    return sum(ray.get([one.remote() for _ in range(2)]))


@dag(dag_id="ray_resources", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, max_active_tasks=1)
def ray_resources():
    @too_big.task
    def asks_too_much() -> int:
        return _ray_sum()

    @fits.task
    def asks_what_fits() -> int:
        return _ray_sum()

    asks_too_much() >> asks_what_fits()


ray_resources()
