"""number_of_workers=True (it used to become 1 worker): a DAG import error."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup


@dag(dag_id="bad_dask_workers_bool", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=True)))
    def t() -> None:
        pass

    t()


bad()
