"""env.task(42): not a function (Airflow said 'No positional arguments allowed')."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask

env = TaskEnvironment(name="int_task", plugin_config=Dask())


@dag(dag_id="bad_task_checks_env_task_int", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    env.task(42)


bad()
