"""The flyte-sdk Dask example, ported to Airflow: a bare ``Client()`` inside the task reaches the task's cluster.

Runs a ``LocalCluster`` on the Airflow worker, sized by ``WorkerGroup`` (3 workers with
1 thread and 1 GiB each here). The scheduler's settings and the images are used when the
task runs on Kubernetes.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, TaskEnvironment, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, Scheduler, WorkerGroup

dask_config = Dask(
    scheduler=Scheduler(resources=Resources(cpu="1", memory="2Gi")),
    workers=WorkerGroup(number_of_workers=3, resources=Resources(cpu="1", memory="1Gi")),
)

dask_env = TaskEnvironment(
    name="dask_env",
    plugin_config=dask_config,
    image="my-dask-image",
)


@dag(dag_id="example_flyte_dask", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "dask", "example"])
def example_flyte_dask():
    @flyte_task(dask_env)
    async def dask_task(n: int = 100) -> dict:
        from distributed import Client

        # Connect to the Dask cluster
        client = Client()
        # ... perform Dask operations ...
        squares = client.map(lambda x: x * x, range(n))
        total = client.submit(sum, squares).result()
        return {"workers": len(client.scheduler_info()["workers"]), "sum_of_squares": total}

    dask_task()


example_flyte_dask()
