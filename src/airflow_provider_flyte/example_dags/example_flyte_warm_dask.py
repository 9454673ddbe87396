"""A warm Dask engine shared by mapped tasks (``ReusePolicy``), with a live dashboard link.

Each mapped ``partition_stats`` task runs on the same Dask scheduler and workers, started once on
this Airflow worker by the first task and kept warm for ``idle_ttl`` seconds after the last one
leaves: the other tasks skip the cluster start. Every task's workers are restarted after it, so no
module, global or environment variable of one task reaches the next (docs/warm-engines.md).

The task's "Dask dashboard" button (an extra link) opens the warm scheduler's dashboard, which stays
up while the server is warm, after the task has ended. It is served on 127.0.0.1: open it from the
worker machine (or forward its port); the ``dask`` extra installs bokeh, which serves it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

warm_dask_env = TaskEnvironment(
    name="warm_dask_env",
    plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)),
    # one warm server for the environment, stopped 5 minutes after its last task
    reusable=ReusePolicy(replicas=1, idle_ttl=300),
)


@dag(dag_id="example_flyte_warm_dask", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "dask", "warm", "example"])
def example_flyte_warm_dask():
    @warm_dask_env.task
    def partition_stats(part: int) -> dict:
        client = ctx().data["dask_client"]
        values = range(part * 1000, (part + 1) * 1000)
        squares = client.map(lambda x: x * x, values, pure=False)
        return {"part": part, "sum_of_squares": client.submit(sum, squares).result(),
                "scheduler": client.scheduler.address, "dashboard": client.dashboard_link}

    @task
    def total(stats: list[dict]) -> int:
        return sum(s["sum_of_squares"] for s in stats)

    total(partition_stats.expand(part=[0, 1, 2, 3]))


example_flyte_warm_dask()
