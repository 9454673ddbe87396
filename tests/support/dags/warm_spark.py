"""Warm Spark Connect server (ReusePolicy): two tasks share one server, each with a session of its own."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

warm_env = TaskEnvironment(
    name="warm_spark",
    # spark.kryoserializer.buffer.max is read at start: a Connect session refuses it, so the server must take it
    plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "768m",
                                    "spark.sql.shuffle.partitions": "3", "spark.kryoserializer.buffer.max": "96m"}),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)


def _server_of(port: str) -> dict:
    for record in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json"):
        data = json.loads(record.read_text())
        if data["address"].endswith(f":{port}"):
            return {"name": data["name"], "pids": [int(p["pid"]) for p in data["pids"]]}
    return {}


def _look(_: int) -> str:
    import os
    import sys

    seen = {"env": os.environ.get("WARM_LEAK"), "global": getattr(sys.modules.get("helpers"), "LEAK", None)}
    import helpers

    os.environ["WARM_LEAK"] = "set-by-a-task"
    helpers.LEAK = "set-by-a-task"
    return json.dumps(seen)


def _report() -> dict:
    from pyspark.sql.functions import udf

    spark = ctx().data["spark_session"]
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    kryo_max = spark.conf.get("spark.kryoserializer.buffer.max")
    spark.conf.set("spark.sql.shuffle.partitions", "7")  # this session only
    look = udf(_look, "string")
    seen = json.loads(spark.range(1).select(look("id").alias("v")).collect()[0]["v"])
    port = spark.client._builder.endpoint.rsplit(":", 1)[1]
    return {"session": spark.session_id, "server": _server_of(port), "partitions": partitions, "kryo_max": kryo_max, "worker": seen,
            "sum": spark.range(4).groupBy().sum("id").collect()[0][0]}


@dag(dag_id="warm_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "warm"])
def warm_spark():
    @warm_env.task
    def first() -> dict:
        return _report()

    @warm_env.task
    def second() -> dict:
        return _report()

    first() >> second()


warm_spark()
