"""OpenLineage on a warm Spark Connect server (docs/lineage.md): two task runs share one server, each
session holding its own parent. Run by tests/engines/test_lineage.py."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

warm_env = TaskEnvironment(
    name="ol_warm_spark",
    plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "768m",
                                    "spark.sql.shuffle.partitions": "2"}),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)
KEYS = ("parentJobNamespace", "parentJobName", "parentRunId", "rootParentRunId", "rootParentJobName",
        "rootParentJobNamespace")


def _report() -> dict:
    spark = ctx().data["spark_session"]
    conf = {f"spark.openlineage.{key}": spark.conf.get(f"spark.openlineage.{key}", None) for key in KEYS}
    servers = sorted(json.loads(p.read_text())["name"]
                     for p in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json"))
    return {"conf": conf, "servers": servers, "session": spark.session_id}


@dag(dag_id="lineage_warm_dag", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test"])
def lineage_warm_dag():
    @warm_env.task
    def first() -> dict:
        return _report()

    @warm_env.task
    def second() -> dict:
        return _report()

    first() >> second()


lineage_warm_dag()
