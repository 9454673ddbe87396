"""A local Dask task whose workers take 6 s to close (issue 27): as a worker does on a loaded machine.

Each worker gets a plugin whose teardown (run by the worker's close) sleeps; the worker process then exits.
distributed's own close gives a worker process 4 s and SIGKILLs it; the provider's close gives it 30 s.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

CLOSE_SECONDS = 6


@dag(dag_id="dask_slow_close", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def dask_slow_close():
    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))
    def slow_to_close() -> int:
        from distributed.diagnostics.plugin import WorkerPlugin

        class SlowClose(WorkerPlugin):
            def teardown(self, worker) -> None:  # type: ignore[no-untyped-def]
                import time

                time.sleep(CLOSE_SECONDS)

        client = ctx().data["dask_client"]
        client.register_plugin(SlowClose(), name="slow-close")
        return len(client.scheduler_info(n_workers=-1)["workers"])

    slow_to_close()


dask_slow_close()
