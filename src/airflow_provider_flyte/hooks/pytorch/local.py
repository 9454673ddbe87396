"""PyTorch Elastic on the worker: one node, ``nproc_per_node`` processes, rendezvous on 127.0.0.1 only."""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.core.bounds import check_local_fit
from airflow_provider_flyte.core.spec import LOCAL
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.pytorch import (
    LOCAL_HOST,
    LOCAL_RDZV_BACKEND,
    FlyteElasticHook,
    network_interfaces,
    open_listener,
    register_local_rendezvous,
)


class LocalElasticHook(FlyteElasticHook):
    """torch's elastic agent in the task process; a c10d rendezvous whose stores bind loopback."""

    placement = LOCAL

    def start(self) -> None:
        cfg = self.config
        if cfg.max_nodes > 1:
            raise FlyteConfigError(
                "Elastic.nnodes", cfg.nnodes,
                f"a local run has one node, so a rendezvous for up to {cfg.max_nodes} nodes would wait for "
                "nodes that never come",
                "use nnodes=1 with nproc_per_node=N processes on this worker; run several nodes on Kubernetes",
            )
        # Before any worker starts: more processes than this machine can hold would never rendezvous.
        check_local_fit("Elastic.nproc_per_node", cfg.nproc_per_node, None, engine="PyTorch Elastic")
        # Local workers talk over loopback only (gloo's sockets, NCCL's bootstrap, the rendezvous, the store).
        if any(name == "lo" for _, name in network_interfaces()):
            self.set_default_env("GLOO_SOCKET_IFNAME", "lo")
            self.set_default_env("NCCL_SOCKET_IFNAME", "lo")

    def rendezvous_port(self) -> int | None:
        return open_listener()

    def launch_settings(self, port: int | None) -> dict[str, Any]:
        cfg = self.config
        register_local_rendezvous()
        if cfg.rdzv_backend != "c10d":
            self.log.info("Local run: using a c10d rendezvous on %s instead of %s", LOCAL_HOST, cfg.rdzv_backend)
        return {
            "min_nodes": cfg.min_nodes,
            "max_nodes": cfg.max_nodes,
            "nproc_per_node": cfg.nproc_per_node,
            "rdzv_backend": LOCAL_RDZV_BACKEND,
            "rdzv_endpoint": f"{LOCAL_HOST}:{port}",
            "max_restarts": cfg.max_restarts,
            "local_addr": LOCAL_HOST,
        }
