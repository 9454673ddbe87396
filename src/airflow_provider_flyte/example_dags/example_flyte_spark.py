"""The flyte-sdk Spark example, ported to Airflow: ``spark.range(1, 1000).count()`` with a managed session.

Runs on the Airflow worker (``local[*]``) by default. Point it at a cluster by setting
``conn_id`` on the environment (a ``flyte_spark`` connection), without changing the task.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.spark import Spark

spark_conf = Spark(
    spark_conf={
        "spark.driver.memory": "1000M",
        "spark.executor.memory": "1000M",
        "spark.executor.instances": "2",
        "spark.ui.enabled": "false",
    },
)

spark_env = TaskEnvironment(
    name="spark_env",
    plugin_config=spark_conf,
    image="ghcr.io/flyteorg/spark-py:v3.4.0",
)


@dag(dag_id="example_flyte_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "spark", "example"])
def example_flyte_spark():
    @spark_env.task
    async def process_data(partitions: int = 3) -> dict:
        # Access the automatically initialized SparkSession
        spark = ctx().data["spark_session"]

        # Use Spark as usual
        df = spark.range(1, 1000, numPartitions=partitions).toDF("number")
        return {
            "count": df.count(),
            "executor_instances": spark.sparkContext.getConf().get("spark.executor.instances"),
        }

    process_data()


example_flyte_spark()
