"""OpenLineage on a warm Spark Connect server (docs/lineage.md): two task runs share one server, each
session holding its own parent. Run by tests/engines/test_lineage.py."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.spark import Spark

warm_env = TaskEnvironment(
    name="ol_warm_spark",
    plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "768m",
                                    "spark.sql.shuffle.partitions": "2"}),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)
dask_env = TaskEnvironment(name="ol_warm_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)),
                           reusable=ReusePolicy(replicas=1, idle_ttl=30))
OL_ENV = ("OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT")
KEYS = ("parentJobNamespace", "parentJobName", "parentRunId", "rootParentRunId", "rootParentJobName",
        "rootParentJobNamespace")


def _report() -> dict:
    spark = ctx().data["spark_session"]
    conf = {f"spark.openlineage.{key}": spark.conf.get(f"spark.openlineage.{key}", None) for key in KEYS}
    servers = sorted(json.loads(p.read_text())["name"]
                     for p in Path(os.environ["AIRFLOW__FLYTE__WARM_DIR"]).glob("*/server.json"))
    return {"conf": conf, "servers": servers, "session": spark.session_id}


def _worker_env() -> dict:
    return {name: os.environ.get(name) for name in OL_ENV}


def _workers_env() -> list:
    client = ctx().data["dask_client"]
    client.wait_for_workers(1, timeout=120)  # the previous task's workers were restarted (warm Dask)
    return list(client.run(_worker_env).values())


@dag(dag_id="lineage_warm_dag", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test"])
def lineage_warm_dag():
    @warm_env.task
    def first() -> dict:
        return _report()

    @warm_env.task
    def second() -> dict:
        return _report()

    @dask_env.task
    def dask_first() -> list:
        return _workers_env()

    @dask_env.task
    def dask_second() -> list:
        return _workers_env()

    first() >> second() >> dask_first() >> dask_second()


lineage_warm_dag()
