"""An async generator as a task (was a serializer TypeError at run time)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.dask import Dask


@dag(dag_id="bad_task_checks_async_generator", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Dask())
    async def t():
        yield 1

    t()


bad()
