"""Ray reuse with shutdown_after_job_finishes=True: Flyte refuses it."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

env = TaskEnvironment(
    name="bad",
    plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)],
                               shutdown_after_job_finishes=True),
    reusable=ReusePolicy(replicas=1),
)
