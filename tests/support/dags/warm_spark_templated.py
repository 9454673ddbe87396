"""A warm Spark server whose whole ``spark_conf`` comes from a DAG Param (native rendering), as a trigger
form sets it: parse cannot see its keys, so a binding address in it is refused when the task renders it."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

templated_env = TaskEnvironment(
    name="warm_spark_templated",
    plugin_config=Spark(spark_conf="{{ params.spark_conf }}"),
    reusable=ReusePolicy(replicas=1, idle_ttl=30),
)


@dag(dag_id="warm_spark_templated", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     render_template_as_native_obj=True, tags=["test", "warm"],
     params={"spark_conf": {"spark.master": "local[1]", "spark.driver.memory": "512m"}})
def warm_spark_templated():
    @templated_env.task
    def count() -> dict:
        spark = ctx().data["spark_session"]
        return {"port": int(spark.client._builder.endpoint.rsplit(":", 1)[1]), "count": spark.range(5).count()}

    count()


warm_spark_templated()
