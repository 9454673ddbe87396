"""Ray DAGs run in child processes: two that run until killed (one swallows the interrupt), two that must
overlap in time."""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from airflow.sdk import dag
from helpers import ray_util

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

ray_env = TaskEnvironment(
    name="ray_process",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="workers", replicas=1)]),
)


@dag(dag_id="ray_sleeping", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_sleeping():
    @ray_env.task
    def runs_until_killed() -> None:
        import ray

        ray.get(ray.remote(lambda: 1).remote())  # a worker process exists
        ray_util.write_probe("sleeping")
        ray.get(ray.remote(lambda: time.sleep(600)).remote())  # killed while waiting on a Ray worker

    runs_until_killed()


@dag(dag_id="ray_swallows_kill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_swallows_kill():
    @ray_env.task
    def swallows_the_interrupt() -> None:
        import ray

        ray.get(ray.remote(lambda: 1).remote())
        ray_util.write_probe("swallowing")
        while ray.is_initialized():  # user code that swallows KeyboardInterrupt: the kill's teardown comes anyway
            with contextlib.suppress(KeyboardInterrupt):
                time.sleep(0.2)

    swallows_the_interrupt()


def _concurrent(name: str):
    @dag(dag_id=f"ray_concurrent_{name}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
    def ray_concurrent():
        @ray_env.task
        def overlap() -> dict:
            import ray

            probe = ray_util.write_probe(f"concurrent_{name}")
            running = ray_util.wait_for_peers(name, count=2)
            values = ray.get([ray.remote(ray_util.shift).remote(i) for i in range(4)])
            return {"values": values, "running": running, "temp_dir": probe["temp_dir"]}

        overlap()

    return ray_concurrent()


ray_sleeping()
ray_swallows_kill()
ray_concurrent_a = _concurrent("a")
ray_concurrent_b = _concurrent("b")
