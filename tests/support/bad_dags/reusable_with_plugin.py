"""An Elastic plugin_config on a reusable environment: Flyte refuses it at construction (Elastic is never reused)."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment
from airflow_provider_flyte.plugins.pytorch import Elastic

env = TaskEnvironment(name="bad", plugin_config=Elastic(nnodes=1, nproc_per_node=1), reusable=ReusePolicy())
