"""plugin_config on a reusable environment: Flyte refuses it at construction."""

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.spark import Spark

env = TaskEnvironment(name="bad", plugin_config=Spark(), reusable=True)
