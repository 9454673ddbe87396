# ruff: noqa  (the seed page's code as printed: only its import lines are changed)
from airflow_provider_flyte.plugins.spark import Spark
import airflow_provider_flyte as flyte

spark_conf = Spark(
    spark_conf={
        "spark.driver.memory": "3000M",
        "spark.executor.memory": "1000M",
        "spark.executor.instances": "2",
    },
)

spark_env = flyte.TaskEnvironment(
    name="spark_env",
    plugin_config=spark_conf,
    image="ghcr.io/flyteorg/spark-py:v3.4.0",
)

@spark_env.task
async def process_data(partitions: int = 3) -> float:
    # Access the automatically initialized SparkSession
    spark = flyte.ctx().data["spark_session"]

    # Use Spark as usual
    df = spark.range(1, 1000).toDF("number")
    return df.count()


# -- not on the seed page: the DAG that runs it --------------------------------------------------
from datetime import datetime  # noqa: E402

from airflow.sdk import DAG  # noqa: E402

with DAG("seed_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    process_data()
