"""OpenLineage on the simulated Kubernetes (docs/lineage.md): a RayJob's job driver and a Ray task on every Ray
node, and each of a two-pod PyTorchJob's ranks, see the task run's parent. Run by tests/kubernetes/test_lineage.py
in a child process."""

from __future__ import annotations

import os
import socket
import time
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None
IMAGE = "sim/venv:1"  # the simulator's image is this machine's venv
OL_ENV = ("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT")

ray_env = TaskEnvironment(name="ol_k8s_ray", image=IMAGE, conn_id=CONN_ID,
                          plugin_config=RayJobConfig(worker_node_config=[]))  # head only
elastic_env = TaskEnvironment(name="ol_k8s_elastic", image=IMAGE, conn_id=CONN_ID,
                              plugin_config=Elastic(nnodes=2, nproc_per_node=1, max_restarts=0))


def worker_env() -> dict[str, str | None]:
    """What this process sees, and where it runs (a simulated pod's HOSTNAME is its pod name)."""
    return {**{name: os.environ.get(name) for name in OL_ENV}, "pod": os.environ.get("HOSTNAME"),
            "host": socket.gethostname(), "pid": os.getpid()}


@dag(dag_id="lineage_k8s_more", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test"])
def lineage_k8s_more():
    @ray_env.task
    def ray_parent() -> dict:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        deadline = time.monotonic() + 120
        while len(nodes := [n for n in ray.nodes() if n["Alive"]]) < 1 and time.monotonic() < deadline:
            time.sleep(1)  # the head and the worker pod's node
        remote = ray.remote(worker_env)
        on_each = [remote.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
                   for n in nodes]
        return {"task": worker_env(), "workers": ray.get(on_each)}

    @elastic_env.task
    def elastic_parent() -> dict:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        try:
            ranks: list = [None] * dist.get_world_size()
            dist.all_gather_object(ranks, {**worker_env(), "rank": dist.get_rank()})
            return {"workers": ranks}
        finally:
            dist.destroy_process_group()

    ray_parent() >> elastic_parent()


lineage_k8s_more()
