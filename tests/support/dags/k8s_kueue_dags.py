"""Spark tasks that wait in a Kueue queue (tests/kubernetes/test_kueue.py, with the Kueue stand-in).

``FLYTE_TEST_CONN_ID`` names the kubernetes connection, ``FLYTE_TEST_KUEUE_QUEUE`` the queue (the task's
``kueue_queue``), ``FLYTE_TEST_STARTUP_S`` the startup timeout and ``FLYTE_TEST_KUEUE_TIMEOUT_S`` the queue
timeout (unset: none).
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.spark import Spark

CONN_ID = os.environ.get("FLYTE_TEST_CONN_ID") or None
QUEUE = os.environ.get("FLYTE_TEST_KUEUE_QUEUE", "one-at-a-time")
STARTUP_S = float(os.environ.get("FLYTE_TEST_STARTUP_S", "8"))
QUEUE_TIMEOUT_S = float(os.environ["FLYTE_TEST_KUEUE_TIMEOUT_S"]) if os.environ.get("FLYTE_TEST_KUEUE_TIMEOUT_S") \
    else None

queued_env = TaskEnvironment(name="queued_spark", image="sim/venv:1", conn_id=CONN_ID, kueue_queue=QUEUE,
                             plugin_config=Spark(spark_conf={"spark.executor.instances": "1"}))


@dag(schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def k8s_kueue():
    @queued_env.task(startup_timeout=STARTUP_S, kueue_timeout=QUEUE_TIMEOUT_S)
    def count_in_queue(n: int) -> int:
        from airflow_provider_flyte import ctx

        spark = ctx().data["spark_session"]
        return int(spark.sparkContext.parallelize(range(n), 1).count())

    count_in_queue(7)


k8s_kueue()
