"""Flyte's override parameters reaching the run, and nested task calls (issue 12)."""

from __future__ import annotations

import os
import time
from datetime import datetime

from airflow.sdk import dag

import airflow_provider_flyte as flyte
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

ray_env = flyte.TaskEnvironment(
    name="ray_sized",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)]),
)
dask_env = flyte.TaskEnvironment(
    name="dask_env_vars",
    plugin_config=Dask(workers=WorkerGroup(number_of_workers=1, resources=flyte.Resources(cpu="1", memory="1Gi"))),
    env_vars={"FLYTE_PORTING_PROBE": "from-env"},
)
plain = flyte.TaskEnvironment(name="plain")


@ray_env.task
def ray_cpus() -> float:
    import ray

    return ray.cluster_resources().get("CPU")


@dask_env.task
def worker_env() -> list:
    from distributed import Client

    client = Client()
    here = os.getpid()
    return client.submit(lambda: [os.getpid() != here, os.environ.get("FLYTE_PORTING_PROBE")], pure=False).result()


@plain.task
def sleeper(seconds: int = 60) -> str:
    time.sleep(seconds)
    return "woke"


@plain.task
def double(x: int) -> int:
    return 2 * x


@plain.task
async def adouble(x: int) -> int:
    return 2 * x


@plain.task
def sync_outer(x: int) -> list:
    ident = flyte.ctx().action.name
    return [double(x), double.override(env_vars={"FLYTE_PORTING_PROBE": "inner"})(x + 1), ident]


@plain.task
async def async_outer(x: int) -> list:
    return [await adouble(x), await adouble.override(short_name="again")(x + 1)]


@dag(dag_id="porting_overrides", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def porting_overrides():
    ray_cpus.override(task_id="ray_default")()
    ray_cpus.override(task_id="ray_resources", resources=flyte.Resources(cpu="0.5"))()
    worker_env.override(task_id="dask_default")()
    worker_env.override(task_id="dask_env_vars", env_vars={"FLYTE_PORTING_PROBE": "from-override"})()
    sleeper.override(task_id="timed_out", timeout=3, retries=0)()
    sleeper.override(task_id="in_time", timeout=60)(seconds=0)
    sync_outer(5)
    async_outer(5)


porting_overrides()
