"""Dask on a warm server of this machine (``ReusePolicy``): the attach placement on a leased scheduler.

The server is ``dask scheduler`` + ``dask worker --nworkers N`` started by a supervisor
(:mod:`airflow_provider_flyte.warm`). The task gets its own client and code-bundle plugins, as on
any existing scheduler; after the task its workers are restarted (nannies start fresh processes),
so no module, env var or global of one task reaches the next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.spec import WARM
from airflow_provider_flyte.hooks.dask.attach import AttachDaskHook
from airflow_provider_flyte.hooks.placements.warm import WarmRun, lease_server

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

SERVER_MODULE = "airflow_provider_flyte.warm.servers.dask"
_RESTART_TIMEOUT_S = 60


class WarmDaskHook(WarmRun, AttachDaskHook):
    placement = WARM

    def server_params(self) -> dict[str, Any]:
        """The settings fixed at server start (the fingerprint): worker count, threads, memory."""
        kwargs = self.cluster_kwargs()
        return {key: kwargs.get(key) for key in ("n_workers", "threads_per_worker", "memory_limit")}

    def cluster_target(self) -> ClusterTarget:
        self.lease, target = lease_server(self, server_module=SERVER_MODULE, params=self.server_params(),
                                          conn_type="flyte_dask")
        return target

    def start(self) -> dict[str, Any]:
        data = super().start()
        self.add_cleanup(self._recycle_workers, data["dask_client"])  # runs first in post: the client is open
        return data

    def _recycle_workers(self, client: Any) -> None:
        """Fresh worker processes for the next task (nanny restart), unless another task is attached
        (``concurrency`` > 1): then the last one to leave recycles them."""
        if client.status != "running" or self.lease is None:
            return
        if self.lease.others_attached():
            self.log.info("Another task is attached to %s: its Dask workers are recycled when the last one leaves",
                          self.lease.record.name)
            return
        client.restart(timeout=_RESTART_TIMEOUT_S, wait_for_workers=False)
        self.log.info("Dask workers of %s restarted for the next task", self.lease.record.name)
