"""A generator as a task (its items would never reach XCom)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask


def job():
    yield 1


@dag(dag_id="bad_task_checks_generator", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    FlyteDaskOperator(task_id="t", python_callable=job, plugin_config=Dask())


bad()
