"""A Dask worker memory of 1Mi (a typo for 1Gi): a DAG import error, not a CommClosedError at run time."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup


@dag(dag_id="bad_dask_memory_typo", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=2, resources=Resources(memory="1Mi"))))
    def t() -> None:
        pass

    t()


bad()
