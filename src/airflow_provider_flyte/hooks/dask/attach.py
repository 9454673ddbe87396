"""Dask on an existing scheduler named by a ``flyte_dask`` connection; the cluster keeps running."""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.core.spec import ATTACH
from airflow_provider_flyte.hooks.dask import (
    DASHBOARD_LINK_EXTRA,
    FlyteDaskHook,
    dashboard_link,
    scheduler_is_silent,
)
from airflow_provider_flyte.hygiene.signals import sigterm_stops_wait


class AttachDaskHook(FlyteDaskHook):
    """Probe the scheduler (TCP, then Dask's handshake), connect a client, install the code bundle."""

    placement = ATTACH

    def start(self) -> dict[str, Any]:
        from airflow_provider_flyte.hooks.clusters import no_answer_error, probe

        target = self.cluster_target()
        probe(target, timeout=target.connect_timeout, engine="Dask scheduler")
        with sigterm_stops_wait(target.describe()):
            silent = scheduler_is_silent(target.address, target.connect_timeout)
        if silent:
            raise no_answer_error(target, "Dask scheduler", target.connect_timeout, "no Dask handshake")
        client = self._connect_client(target.address, timeout=target.connect_timeout, where=target.describe())
        link = target.extra.get(DASHBOARD_LINK_EXTRA) or dashboard_link(client)
        if link:
            self.links["dask_dashboard"] = str(link)
        return {"dask_client": client}
