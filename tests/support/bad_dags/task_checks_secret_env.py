"""A secret whose env var (API_TOKEN) is also an env_vars key: one value would be dropped silently."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.secrets import Secret

env = TaskEnvironment(name="clash", plugin_config=Dask(), env_vars={"API_TOKEN": "public"},
                      secrets=[Secret(key="api_token")])


@dag(dag_id="bad_task_checks_secret_env", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @env.task
    def t() -> None:
        pass

    t()


bad()
