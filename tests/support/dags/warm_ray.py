"""Warm Ray server (ReusePolicy): two tasks of one environment share one ``ray start`` head, each its own job."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

warm_env = TaskEnvironment(
    name="warm_ray",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)]),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)


def _server_of(address: str) -> dict:
    """The warm server record whose address the driver is connected to (read from the state folder)."""
    for record in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json"):
        data = json.loads(record.read_text())
        if data["address"].endswith(address):
            return {"name": data["name"], "pids": [int(p["pid"]) for p in data["pids"]]}
    return {}


def _report() -> dict:
    import ray

    @ray.remote
    def look() -> dict:
        import sys

        from helpers import ray_util  # noqa: F401  (the DAG folder's helpers reach the workers)

        seen = {"env": os.environ.get("WARM_LEAK"), "global": getattr(sys.modules["helpers.ray_util"], "LEAK", None),
                "pid": os.getpid()}
        os.environ["WARM_LEAK"] = "set-by-a-task"
        sys.modules["helpers.ray_util"].LEAK = "set-by-a-task"
        return seen

    context = ray.get_runtime_context()
    return {"gcs": context.gcs_address, "job": context.get_job_id(), "server": _server_of(context.gcs_address),
            "worker": ray.get(look.remote(), timeout=120), "sum": ray.get(ray.put(sum([1, 2, 3])))}


@dag(dag_id="warm_ray", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "warm"])
def warm_ray():
    @warm_env.task
    def first() -> dict:
        return _report()

    @warm_env.task
    def second() -> dict:
        return _report()

    first() >> second()


warm_ray()
