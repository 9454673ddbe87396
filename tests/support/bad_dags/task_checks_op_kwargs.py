"""op_kwargs given a list (failed deep inside without naming it)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask


def job(n: int = 1) -> int:
    return n


@dag(dag_id="bad_task_checks_op_kwargs", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    FlyteDaskOperator(task_id="t", python_callable=job, plugin_config=Dask(), op_kwargs=[("n", 2)])


bad()
