"""Dask inside a DaskJob: the job runner's client on the scheduler dask-kubernetes started.

The operator gives the job runner pod ``DASK_SCHEDULER_ADDRESS``; the task connects there, and
the code bundle is installed on the scheduler and every worker by plugins, as on an existing
scheduler. The operator tears the cluster down when the job runner exits.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_flyte.core.spec import IN_CLUSTER
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.dask import FlyteDaskHook, dashboard_link

SCHEDULER_ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
_CONNECT_TIMEOUT_S = 60.0
#: Seconds the job runner waits for the DaskJob's workers to join before the function runs anyway.
_WORKERS_TIMEOUT_S = 120.0


class InClusterDaskHook(FlyteDaskHook):
    """A client on ``$DASK_SCHEDULER_ADDRESS``."""

    placement = IN_CLUSTER

    def start(self) -> dict[str, Any]:
        address = os.environ.get(SCHEDULER_ADDRESS_ENV, "").strip()
        if not address:
            raise FlyteEngineError(
                f"{SCHEDULER_ADDRESS_ENV} is not set: the in-cluster Dask placement runs in a DaskJob's job "
                "runner, where dask-kubernetes sets it to the scheduler's address"
            )
        client = self._connect_client(address, timeout=_CONNECT_TIMEOUT_S, where=address)
        self._wait_for_workers(client)
        link = dashboard_link(client)
        if link:
            self.links["dask_dashboard"] = str(link)
        return {"dask_client": client}

    def _wait_for_workers(self, client: Any) -> None:
        """The function starts with its cluster: dask-kubernetes starts the job runner without waiting for
        the workers, so a bare ``Client()`` could see none yet. Bounded: a worker that cannot be scheduled
        (no capacity) is said in the log, and the function runs on the workers that joined."""
        wanted = getattr(getattr(self.config, "workers", None), "number_of_workers", None)
        if not isinstance(wanted, int) or wanted < 1:
            return
        try:
            client.wait_for_workers(wanted, timeout=_WORKERS_TIMEOUT_S)
        except TimeoutError:
            joined = len(client.nthreads())  # every worker (scheduler_info lists 5 unless told; older versions cannot be)
            self.log.warning("Only %d of the DaskJob's %d worker(s) joined within %.0f s: running on those",
                             joined, wanted, _WORKERS_TIMEOUT_S)
            return
        self.log.info("All %d Dask worker(s) of the DaskJob joined", wanted)

