"""A Ray head with a ray start option typo (numcpus): a DAG import error, not a node that fails to start."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig


@dag(dag_id="bad_ray_start_param", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[],
                                           head_node_config=HeadNodeConfig(ray_start_params={"numcpus": "2"})))
    def t() -> None:
        pass

    t()


bad()
