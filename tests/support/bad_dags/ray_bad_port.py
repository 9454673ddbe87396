"""A Ray address with a bad port: a DAG import error (it used to be silently replaced by 10001)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.ray import RayJobConfig


@dag(dag_id="bad_ray_port", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[], address="ray://head:10O01"))
    def t() -> None:
        pass

    t()


bad()
