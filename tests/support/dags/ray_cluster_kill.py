"""A Ray task on the test cluster (Ray Client connection from the test) that waits on a remote task
until it is killed (SIGTERM teardown test).

The remote task writes ``started-<pid>.json`` (its pid, job id, node) to ``FLYTE_TEST_KILL_DIR``,
then sleeps until ``stop`` appears there (or ``SLEEP_S`` passes) and writes ``finished``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte.operators.ray import FlyteRayOperator
from airflow_provider_flyte.plugins.ray import RayJobConfig

CLIENT_CONN = "flyte_test_ray_client"
SLEEP_S = 240


def sleep_on_cluster(scratch: str) -> int:
    """Runs in a Ray worker: say where, sleep until told to stop, then leave a trace."""
    import ray

    folder = Path(scratch)
    context = ray.get_runtime_context()
    started = {"pid": os.getpid(), "job_id": context.get_job_id(), "node_id": context.get_node_id()}
    tmp = folder / f"started-{os.getpid()}.tmp"
    tmp.write_text(json.dumps(started))
    tmp.rename(tmp.with_suffix(".json"))
    deadline = time.monotonic() + SLEEP_S
    while time.monotonic() < deadline and not (folder / "stop").exists():
        time.sleep(0.2)
    (folder / "finished").write_text(str(os.getpid()))
    return os.getpid()


def wait_on_cluster() -> None:
    import ray

    scratch = os.environ["FLYTE_TEST_KILL_DIR"]
    (Path(scratch) / "info.json").write_text(json.dumps({"task_pid": os.getpid()}))
    # num_cpus=0: the sleeper holds no CPU of the 1-CPU test nodes.
    ray.get(ray.remote(num_cpus=0)(sleep_on_cluster).remote(scratch))


@dag(dag_id="ray_cluster_kill", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_cluster_kill():
    FlyteRayOperator(task_id="wait_on_cluster", python_callable=wait_on_cluster,
                     plugin_config=RayJobConfig(worker_node_config=[]), conn_id=CLIENT_CONN)


ray_cluster_kill()
