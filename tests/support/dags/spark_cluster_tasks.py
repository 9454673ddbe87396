"""The same Spark code on an existing standalone master, on a Spark Connect server, and on a
master that is down. Connections come from the test (``AIRFLOW_CONN_*``); the UDF imports
``clusterpkg_spark`` (next to this file), which only the code bundle brings to the cluster."""

from __future__ import annotations

import os
import urllib.request
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

MASTER_CONN = "flyte_test_spark_master"
CONNECT_CONN = "flyte_test_spark_connect"
DOWN_CONN = "flyte_test_spark_down"

# A runtime SQL setting (applies everywhere), static/core settings (apply on the master; the
# Connect server rejects them, which must not fail the task) and the app's executor memory.
CONF = {
    "spark.sql.shuffle.partitions": "3",
    "spark.sql.session.timeZone": "Asia/Tokyo",
    "spark.executor.memory": "512m",
    "spark.executor.cores": "1",
}
master_env = TaskEnvironment(name="on_master", conn_id=MASTER_CONN, plugin_config=Spark(spark_conf=CONF),
                             env_vars={"FLYTE_TEST_MARK": "from-env-vars"})
connect_env = TaskEnvironment(name="on_connect", conn_id=CONNECT_CONN, plugin_config=Spark(spark_conf=CONF))
down_env = TaskEnvironment(name="on_down", conn_id=DOWN_CONN, plugin_config=Spark(spark_conf=CONF))


def run_udf() -> dict:
    """A Python UDF that imports the helper package on the cluster; the error text if it cannot."""
    from pyspark.sql.functions import col, udf
    from pyspark.sql.types import MapType, StringType

    @udf(MapType(StringType(), StringType()))
    def tagged(x: int) -> dict:
        from clusterpkg_spark.tagging import tag

        return {k: str(v) for k, v in tag(x).items()}

    spark = ctx().data["spark_session"]
    try:
        rows = spark.range(3).repartition(2).select(tagged(col("id")).alias("t")).collect()
    except Exception as exc:
        return {"ok": False, "error": str(exc)[-3000:]}
    return {"ok": True, "rows": sorted((dict(r.t) for r in rows), key=lambda t: int(t["value"]))}


@dag(dag_id="spark_cluster", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_cluster():
    @connect_env.task
    def on_connect() -> dict:
        spark = ctx().data["spark_session"]
        return {
            **run_udf(),
            "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
            "time_zone": spark.conf.get("spark.sql.session.timeZone"),
            "is_remote": type(spark).__module__,
            "task_pid": os.getpid(),
        }

    @master_env.task(trigger_rule="all_done")
    def on_master() -> dict:
        spark = ctx().data["spark_session"]
        sc = spark.sparkContext
        ui = sc.uiWebUrl
        with urllib.request.urlopen(ui, timeout=10) as resp:
            ui_status = resp.status
        rdd_env = sc.parallelize([0], 1).map(lambda _: os.environ.get("FLYTE_TEST_MARK")).collect()
        return {
            **run_udf(),
            "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
            "time_zone": spark.conf.get("spark.sql.session.timeZone"),
            "executor_memory": sc.getConf().get("spark.executor.memory"),
            "app_name": sc.appName,
            "app_id": sc.applicationId,
            "master": sc.master,
            "ui": ui,
            "ui_status": ui_status,
            "executor_env": rdd_env[0],
            "task_pid": os.getpid(),
        }

    @down_env.task(trigger_rule="all_done")
    def on_down() -> int:
        return ctx().data["spark_session"].range(3).count()

    on_connect() >> on_master() >> on_down()


spark_cluster()
