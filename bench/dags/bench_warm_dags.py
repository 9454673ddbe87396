"""Benchmark DAGs for bench_warm.py: the same .expand() over N small tasks per engine, cold and warm.

N is bench_warm.py's ``--n`` (``FLYTE_BENCH_WARM_N``, default 20).

Each mapped task returns how long it took from the task instance's start until its function ran
(the engine acquire: task process start, imports, the hook's pre), and a tiny job's result.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from airflow.sdk import dag, get_current_context

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark

N = int(os.environ.get("FLYTE_BENCH_WARM_N", "20"))
CONFIGS = {
    "spark": Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "512m", "spark.ui.enabled": "false",
                               "spark.sql.shuffle.partitions": "1"}),
    "ray": RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)]),
    "dask": Dask(workers=WorkerGroup(number_of_workers=1)),
}
POLICIES = {"spark": ReusePolicy(replicas=2, idle_ttl=60), "ray": ReusePolicy(replicas=1, idle_ttl=60),
            "dask": ReusePolicy(replicas=2, idle_ttl=60)}


def _acquired_s() -> float:
    ti = get_current_context()["ti"]
    return time.time() - ti.start_date.timestamp()


def _job(engine: str, x: int) -> int:
    data = ctx().data
    if engine == "spark":
        return int(data["spark_session"].range(x + 1).count())
    if engine == "ray":
        import ray

        return int(ray.get(ray.remote(lambda v: v + 1).remote(x)))
    return int(data["dask_client"].submit(lambda v: v + 1, x).result())


def _make(engine: str, mode: str) -> None:
    env = TaskEnvironment(name=f"bench_{engine}_{mode}", plugin_config=CONFIGS[engine],
                          reusable=POLICIES[engine] if mode == "warm" else None)

    @dag(dag_id=f"bench_warm_{engine}_{mode}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         max_active_tasks=2, tags=["bench"])
    def bench() -> None:
        @env.task
        def small(x: int) -> dict:
            acquired = _acquired_s()
            return {"acquire_s": acquired, "value": _job(engine, x)}

        small.expand(x=list(range(N)))

    bench()


for _engine in CONFIGS:
    for _mode in ("cold", "warm"):
        _make(_engine, _mode)
