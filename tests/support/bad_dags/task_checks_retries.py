"""retries="x": was reported as <built-in method count of str object>."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask

env = TaskEnvironment(name="retries", plugin_config=Dask())


@dag(dag_id="bad_task_checks_retries", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @env.task(retries="x")
    def t() -> None:
        pass

    t()


bad()
