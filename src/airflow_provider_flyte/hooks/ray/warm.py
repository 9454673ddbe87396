"""Ray on a warm server of this machine (``ReusePolicy``): the attach placement on a leased ``ray start`` head.

Each task is its own Ray job (``ray.init(address=...)`` with its own ``runtime_env`` and the code
bundle as ``working_dir``); ``post`` disconnects (``ray.shutdown()``) and the head stays up for the
next task until ``idle_ttl``. The server requires its own token (``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.spec import WARM
from airflow_provider_flyte.hooks.placements.warm import WarmRun, lease_server
from airflow_provider_flyte.hooks.ray.attach import AttachRayHook
from airflow_provider_flyte.hooks.ray.auth import token_auth_supported

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

SERVER_MODULE = "airflow_provider_flyte.warm.servers.ray"


class WarmRayHook(WarmRun, AttachRayHook):
    placement = WARM

    def server_params(self) -> dict[str, Any]:
        """The settings fixed at server start (the fingerprint): the node's CPUs, and token auth where Ray has it."""
        return {"num_cpus": self.local_num_cpus(), "token_auth": token_auth_supported()}

    def cluster_target(self) -> ClusterTarget | None:
        if self.lease is None:
            self.lease, self._warm_target = lease_server(self, server_module=SERVER_MODULE,
                                                         params=self.server_params(), conn_type="flyte_ray")
        return self._warm_target
