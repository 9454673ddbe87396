"""A Ray runtime_env key typo (pipp): a DAG import error, not a warning in the job's log."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.ray import RayJobConfig


@dag(dag_id="bad_ray_runtime_env", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[], runtime_env={"pipp": ["requests"]}))
    def t() -> None:
        pass

    t()


bad()
