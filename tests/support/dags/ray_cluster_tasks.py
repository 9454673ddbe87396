"""The same Ray code on an existing two-node cluster (Ray Client and GCS address) and on one that is down.

Connections come from the test (``AIRFLOW_CONN_*``). The remote function is pinned to the
second node (a custom resource only that node has) and imports ``clusterpkg_ray`` (next to
this file), which only the code bundle brings to the cluster.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.operators.ray import FlyteRayOperator
from airflow_provider_flyte.plugins.ray import RayJobConfig

CLIENT_CONN = "flyte_test_ray_client"
GCS_CONN = "flyte_test_ray_gcs"
DOWN_CONN = "flyte_test_ray_down"
SECOND_NODE_RESOURCE = "flyte_test_second_node"

config = RayJobConfig(worker_node_config=[], runtime_env={"env_vars": {"FLYTE_RAY_CLUSTER_VAR": "from-runtime-env"}})
gcs_env = TaskEnvironment(name="on_gcs", conn_id=GCS_CONN, plugin_config=config,
                          env_vars={"FLYTE_RAY_TASK_ENV_VAR": "from-env-vars"})
down_env = TaskEnvironment(name="on_down", conn_id=DOWN_CONN, plugin_config=config)


def on_second_node() -> dict:
    """Run ``clusterpkg_ray.probe.where`` on the second node; the error text if it cannot import it."""
    import ray

    @ray.remote(num_cpus=0, resources={SECOND_NODE_RESOURCE: 0.01})
    def remote_where() -> dict:
        from clusterpkg_ray import probe

        return probe.where()

    try:
        return {"ok": True, **ray.get(remote_where.remote(), timeout=180)}
    except Exception as exc:
        return {"ok": False, "error": str(exc)[-3000:]}


def driver_listening() -> list[str]:
    """Addresses this task process (the Ray driver) listens on."""
    import psutil

    return sorted({c.laddr.ip for c in psutil.Process().net_connections("inet") if c.status == psutil.CONN_LISTEN})


@dag(dag_id="ray_cluster", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_cluster():
    on_client = FlyteRayOperator(task_id="on_client", python_callable=lambda: {**on_second_node(), "task_pid": os.getpid()},
                                 plugin_config=config, conn_id=CLIENT_CONN)

    @gcs_env.task(trigger_rule="all_done")
    def on_gcs() -> dict:
        return {**on_second_node(), "task_pid": os.getpid(), "driver_listening": driver_listening()}

    @down_env.task(trigger_rule="all_done")
    def on_down() -> int:
        import ray

        return int(ray.cluster_resources().get("CPU", 0))

    on_client >> on_gcs() >> on_down()


ray_cluster()
