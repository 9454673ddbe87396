"""Work that outlives one of its engine's workers (tests/engines/test_faults.py).

Each task starts work in pieces, writes ``$FLYTE_TEST_READY_FILE`` (the worker processes the test
may kill), and then waits for the pieces: the test kills a worker while they run.

- ``fault_dask_worker``: a local Dask cluster of 2 workers; one worker process is SIGKILLed.
- ``fault_spark_executor``: a job on the standalone master (``FLYTE_TEST_SPARK_CONN``); its
  executor JVM is SIGKILLed and the worker starts another.
- ``fault_ray_node``: tasks spread over a two-node Ray cluster (``FLYTE_TEST_RAY_CONN``); the
  second node is removed (its ``ray start`` tree SIGKILLed).
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark

PIECES = 12
PIECE_S = 1.0


def slow_square(x: int) -> int:
    time.sleep(PIECE_S)
    return x * x


def announce(info: dict) -> None:
    ready = Path(os.environ["FLYTE_TEST_READY_FILE"])
    ready.with_suffix(".tmp").write_text(json.dumps(info))
    ready.with_suffix(".tmp").rename(ready)


dask_env = TaskEnvironment(name="fault_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))
spark_env = TaskEnvironment(name="fault_spark", conn_id=os.environ.get("FLYTE_TEST_SPARK_CONN") or None,
                            plugin_config=Spark(spark_conf={"spark.executor.memory": "512m",
                                                            "spark.task.maxFailures": "4"}))
ray_env = TaskEnvironment(name="fault_ray", conn_id=os.environ.get("FLYTE_TEST_RAY_CONN") or None,
                          plugin_config=RayJobConfig(worker_node_config=[]))


@dag(dag_id="fault_dask_worker", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def fault_dask_worker():
    @dask_env.task
    def survives_a_dead_worker() -> int:
        client = ctx().data["dask_client"]
        futures = client.map(slow_square, range(PIECES), pure=False)
        time.sleep(PIECE_S / 2)  # pieces are running on both workers
        announce({"worker_pids": sorted(client.run(os.getpid).values())})
        return sum(client.gather(futures))

    survives_a_dead_worker()


@dag(dag_id="fault_spark_executor", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def fault_spark_executor():
    @spark_env.task
    def survives_a_dead_executor() -> int:
        import threading

        sc = ctx().data["spark_session"].sparkContext
        threading.Timer(2 * PIECE_S, announce, args=({"app_id": sc.applicationId},)).start()
        return int(sc.parallelize(range(PIECES), PIECES).map(slow_square).sum())

    survives_a_dead_executor()


@dag(dag_id="fault_ray_node", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def fault_ray_node():
    @ray_env.task
    def outlives_a_removed_node() -> int:
        import ray

        remote = ray.remote(max_retries=3, scheduling_strategy="SPREAD")(slow_square)
        refs = [remote.remote(i) for i in range(PIECES)]
        time.sleep(PIECE_S / 2)
        announce({"pieces": PIECES})
        return sum(ray.get(refs, timeout=120))

    outlives_a_removed_node()


fault_dask_worker()
fault_spark_executor()
fault_ray_node()
