"""Spark, Ray and Dask tasks, each ``.expand()``-ed over 3 inputs, for the ``airflow standalone`` test.

The three mapped tasks run one engine after the other (Spark, then Ray, then Dask), and the 3
instances of each run at the same time under LocalExecutor: every instance starts its own
engine. Once its engine has answered, an instance announces itself in a folder and waits
(bounded) until its siblings have done the same, so the engines are up simultaneously when
the executor really runs the instances concurrently. Each returns what its engine computed,
the engine's address, its pid and the time its engine was up.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import Resources, ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark

INPUTS = [1, 2, 3]
SIBLING_WAIT_S = 120


def meet_siblings(engine: str, x: int, context: dict) -> int:
    """Announce this instance; wait until all instances of ``engine`` have; return how many did."""
    folder = Path(os.environ.get("FLYTE_E2E_DIR", "/tmp")) / context["run_id"].replace(":", "_") / engine
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(x)).write_text(str(os.getpid()))
    deadline = time.monotonic() + SIBLING_WAIT_S
    while len(list(folder.iterdir())) < len(INPUTS) and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(list(folder.iterdir()))


@dag(dag_id="e2e_expand", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["test", "e2e"], max_active_tasks=len(INPUTS))
def e2e_expand():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.ui.enabled": "false"}))
    def spark_square_sum(x: int, **context) -> dict:
        sc = ctx().data["spark_session"].sparkContext
        value = sc.parallelize(range(x + 1)).map(lambda v: v * v).sum()
        up = time.time()
        peers = meet_siblings("spark", x, context)
        return {"x": x, "value": value, "address": f"127.0.0.1:{sc.getConf().get('spark.driver.port')}",
                "app_id": sc.applicationId, "pid": os.getpid(), "peers": peers, "up": up, "down": time.time()}

    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[],
                                           head_node_config=HeadNodeConfig(requests=Resources(cpu="1"))))
    def ray_square_sum(x: int, **context) -> dict:
        import ray

        value = sum(ray.get([ray.remote(lambda v: v * v).remote(v) for v in range(x + 1)]))
        up = time.time()
        peers = meet_siblings("ray", x, context)
        return {"x": x, "value": value, "address": ray.get_runtime_context().gcs_address,
                "pid": os.getpid(), "peers": peers, "up": up, "down": time.time()}

    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=1,
                                                       resources=Resources(cpu="1", memory="512Mi"))))
    def dask_square_sum(x: int, **context) -> dict:
        client = ctx().data["dask_client"]
        value = client.submit(sum, client.map(lambda v: v * v, range(x + 1))).result()
        up = time.time()
        peers = meet_siblings("dask", x, context)
        return {"x": x, "value": value, "address": client.scheduler.address,
                "pid": os.getpid(), "peers": peers, "up": up, "down": time.time()}

    spark = spark_square_sum.expand(x=INPUTS)
    # all_done: one engine failing still lets the next engine's instances run (and be checked).
    ray_ = ray_square_sum.override(trigger_rule="all_done").expand(x=INPUTS)
    dask = dask_square_sum.override(trigger_rule="all_done").expand(x=INPUTS)
    spark >> ray_ >> dask


e2e_expand()
