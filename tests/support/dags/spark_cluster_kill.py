"""Spark tasks on the test clusters that run a job until the task is killed (SIGTERM teardown tests).

``spark_cluster_kill_master`` runs on the standalone master, ``spark_cluster_kill_connect`` on the
Spark Connect server (connections from the test, ``AIRFLOW_CONN_*``). The task writes
``info.json`` (its pid, the application id); the job's function, on the cluster, writes
``started-<pid>.json`` and then sleeps until ``stop`` appears in ``FLYTE_TEST_KILL_DIR`` (or
``SLEEP_S`` passes), then writes ``finished``.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

MASTER_CONN = "flyte_test_spark_master"
CONNECT_CONN = "flyte_test_spark_connect"
SLEEP_S = 240

master_env = TaskEnvironment(name="kill_master", conn_id=MASTER_CONN,
                             plugin_config=Spark(spark_conf={"spark.executor.memory": "512m"}))
connect_env = TaskEnvironment(name="kill_connect", conn_id=CONNECT_CONN, plugin_config=Spark())


def write_json(path: Path, value: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value))
    tmp.rename(path)


def sleep_on_cluster(scratch: str) -> int:
    """Runs on the cluster: say where, sleep until told to stop, then leave a trace."""
    folder = Path(scratch)
    write_json(folder / f"started-{os.getpid()}.json", {"pid": os.getpid(), "ppid": os.getppid()})
    deadline = time.monotonic() + SLEEP_S
    while time.monotonic() < deadline and not (folder / "stop").exists():
        time.sleep(0.2)
    (folder / "finished").write_text(str(os.getpid()))
    return os.getpid()


@dag(dag_id="spark_cluster_kill_master", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_cluster_kill_master():
    @master_env.task
    def sleep_on_master() -> None:
        scratch = os.environ["FLYTE_TEST_KILL_DIR"]
        sc = ctx().data["spark_session"].sparkContext
        write_json(Path(scratch) / "info.json", {"task_pid": os.getpid(), "app_id": sc.applicationId})
        sc.parallelize([0], 1).map(lambda _: sleep_on_cluster(scratch)).collect()

    sleep_on_master()


@dag(dag_id="spark_cluster_kill_connect", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_cluster_kill_connect():
    @connect_env.task
    def sleep_on_connect() -> None:
        from pyspark.sql.functions import udf
        from pyspark.sql.types import LongType

        scratch = os.environ["FLYTE_TEST_KILL_DIR"]
        spark = ctx().data["spark_session"]
        write_json(Path(scratch) / "info.json", {"task_pid": os.getpid(), "session_id": spark.session_id})
        sleeper = udf(lambda _: sleep_on_cluster(scratch), LongType())
        spark.range(1).select(sleeper("id")).collect()

    sleep_on_connect()


spark_cluster_kill_master()
spark_cluster_kill_connect()
