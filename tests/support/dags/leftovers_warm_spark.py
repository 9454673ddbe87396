"""Two warm Spark tasks that differ only in a setting Spark reads at start (spark.executor.memory): two servers."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark


def _env(memory: str) -> TaskEnvironment:
    return TaskEnvironment(
        name=f"warm_spark_{memory}",
        plugin_config=Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "512m",
                                        "spark.executor.memory": memory}),
        reusable=ReusePolicy(replicas=1, idle_ttl=30),
    )


one_gig, two_gigs = _env("1g"), _env("2g")


def _server() -> dict:
    spark = ctx().data["spark_session"]
    return {"endpoint": spark.client._builder.endpoint, "executor_memory": spark.conf.get("spark.executor.memory")}


@dag(dag_id="leftovers_warm_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "warm"])
def leftovers_warm_spark():
    @one_gig.task
    def with_1g() -> dict:
        return _server()

    @two_gigs.task
    def with_2g() -> dict:
        return _server()

    with_1g() >> with_2g()


leftovers_warm_spark()
