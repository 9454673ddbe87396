"""flyte-sdk's scaling controller in Airflow form: an upstream task sizes the Spark task.

In Flyte, a controller task calls ``spark_task.override(plugin_config=Spark(...))()`` with
``num_executors`` computed from the input. In Airflow the controller is an upstream task
whose return value (an ``XComArg``) sits inside the Spark config; Airflow wires the
dependency, resolves the value at run time, and the provider converts and validates it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_flyte import TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.plugins.spark import Spark

spark_env = TaskEnvironment(
    name="spark_env",
    plugin_config=Spark(spark_conf={"spark.executor.instances": "1", "spark.ui.enabled": "false"}),
)


@dag(dag_id="example_flyte_scaling_controller", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "spark", "example"], params={"rows": 250_000})
def example_flyte_scaling_controller():
    @task
    def scaling_controller(rows: int) -> int:
        """One executor per 100k rows, between 1 and 8."""
        return max(1, min(8, -(-int(rows) // 100_000)))

    @flyte_task(spark_env)
    def spark_task(rows: int) -> dict:
        spark = ctx().data["spark_session"]
        return {
            "rows": spark.range(int(rows)).count(),
            "executors": spark.sparkContext.getConf().get("spark.executor.instances"),
        }

    num_executors = scaling_controller("{{ params.rows }}")
    spark_task.override(
        plugin_config=Spark(spark_conf={
            "spark.executor.instances": num_executors,
            "spark.driver.memory": "1000M",
            "spark.ui.enabled": "false",
        })
    )(rows="{{ params.rows }}")


example_flyte_scaling_controller()
