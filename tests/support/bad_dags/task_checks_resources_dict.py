"""@env.task(resources={"cpu": 2}): Flyte's names in a dict (was a bare TypeError from Airflow's Resources)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.dask import Dask

env = TaskEnvironment(name="res_dict", plugin_config=Dask())


@dag(dag_id="bad_task_checks_resources_dict", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @env.task(resources={"cpu": 2})
    def t() -> None:
        pass

    t()


bad()
