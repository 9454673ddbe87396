# ruff: noqa  (the seed page's code as printed: only its import lines are changed)
from airflow_provider_flyte.plugins.dask import Dask, Scheduler, WorkerGroup
import airflow_provider_flyte as flyte
from distributed import Client

dask_config = Dask(
    scheduler=Scheduler(resources=flyte.Resources(cpu="1", memory="2Gi")),
    workers=WorkerGroup(number_of_workers=3, resources=flyte.Resources(cpu="2", memory="4Gi"))
)

dask_env = flyte.TaskEnvironment(
    name="dask_env",
    plugin_config=dask_config,
    image="my-dask-image",
)

@dask_env.task
async def dask_task():
    # Connect to the Dask cluster
    client = Client()
    # ... perform Dask operations ...


# -- not on the seed page: the DAG that runs it, and a probe of the cluster Client() reached -----
from datetime import datetime  # noqa: E402

from airflow.sdk import DAG  # noqa: E402


@dask_env.task
async def probe() -> dict:
    client = Client()
    return {"workers": len(client.scheduler_info()["workers"]), "sum": client.submit(sum, range(10)).result()}


with DAG("seed_dask", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    dask_task()
    probe()
