"""spark.executor.memory="2 GB" (Spark reads no space): a DAG import error, not a JVM that fails to start."""

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.spark import Spark

env = TaskEnvironment(name="bad", plugin_config=Spark(spark_conf={"spark.executor.memory": "2 GB"}))
