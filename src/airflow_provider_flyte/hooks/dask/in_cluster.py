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
        link = dashboard_link(client)
        if link:
            self.links["dask_dashboard"] = str(link)
        return {"dask_client": client}
