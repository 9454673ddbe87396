"""PyTorch Elastic in a PyTorchJob pod: this pod is one node; the training operator says which.

The Kubeflow training operator gives every replica ``PET_RDZV_ENDPOINT``, ``PET_RDZV_BACKEND``,
``PET_NNODES`` (``min:max``), ``PET_NPROC_PER_NODE``, ``PET_MAX_RESTARTS`` and ``PET_RDZV_ID``
(what ``torchrun`` reads), or, without an elastic policy, ``MASTER_ADDR``/``MASTER_PORT``,
``WORLD_SIZE`` and ``RANK``. The pod's agent launches its local workers with the same env defaults,
watchdog and failure report as locally; the node holding global rank 0 returns its value.
With ``POD_IP`` set (downward API) the rendezvous and worker stores listen on that address only.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from airflow_provider_flyte.core.spec import IN_CLUSTER
from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook, register_bound_rendezvous
from airflow_provider_flyte.plugins.pytorch import parse_nnodes

_DEFAULT_MASTER_PORT = "23456"
#: The pod's IP (downward API ``status.podIP``), set by the provider's PyTorchJob containers.
POD_IP_ENV = "POD_IP"
POD_RDZV_BACKEND = "flyte-c10d-pod"


class InClusterElasticHook(FlyteElasticHook):
    """One node of the job: rendezvous where the training operator says."""

    placement = IN_CLUSTER
    single_node = False

    def start(self) -> None:
        # gloo and NCCL talk over the interface that holds the pod's address.
        interface = _interface_of(os.environ.get(POD_IP_ENV, "").strip())
        if interface:
            self.set_default_env("GLOO_SOCKET_IFNAME", interface)
            self.set_default_env("NCCL_SOCKET_IFNAME", interface)

    def run_id(self) -> str:
        """The same on every node of the job: ``PET_RDZV_ID``, else one derived from the task try."""
        if os.environ.get("PET_RDZV_ID"):
            return os.environ["PET_RDZV_ID"]
        info = self.task
        digest = hashlib.sha256(f"{info.dag_id}|{info.task_id}|{info.run_id}|{info.map_index}|{info.try_number}"
                                .encode()).hexdigest()[:10]
        return f"{info.slug}-{digest}"

    def launch_settings(self, port: int | None) -> dict[str, Any]:
        cfg, env = self.config, os.environ
        nnodes = env.get("PET_NNODES")
        min_nodes, max_nodes = parse_nnodes(nnodes, "PET_NNODES") if nnodes else (cfg.min_nodes, cfg.max_nodes)
        if env.get("PET_RDZV_ENDPOINT"):
            endpoint = env["PET_RDZV_ENDPOINT"]
        elif env.get("MASTER_ADDR"):
            endpoint = f"{env['MASTER_ADDR']}:{env.get('MASTER_PORT', _DEFAULT_MASTER_PORT)}"
        else:
            from airflow_provider_flyte.exceptions import FlyteEngineError

            raise FlyteEngineError(
                "Neither PET_RDZV_ENDPOINT nor MASTER_ADDR is set: the in-cluster Elastic placement runs in a "
                "PyTorchJob replica, where the training operator sets them"
            )
        nproc = env.get("PET_NPROC_PER_NODE", "")
        self.single_node = max_nodes == 1
        backend = env.get("PET_RDZV_BACKEND") or "c10d"
        pod_ip = env.get(POD_IP_ENV, "").strip()
        if backend == "c10d" and pod_ip:
            # Stores listen on the pod's own address, not every interface.
            backend = f"{POD_RDZV_BACKEND}-{pod_ip.replace('.', '-').replace(':', '-')}"
            register_bound_rendezvous(backend, pod_ip)
        return {
            "run_id": self.run_id(),
            "min_nodes": min_nodes,
            "max_nodes": max_nodes,
            "nproc_per_node": int(nproc) if nproc.isdigit() else cfg.nproc_per_node,
            "rdzv_backend": backend,
            "rdzv_endpoint": endpoint,
            "max_restarts": int(env.get("PET_MAX_RESTARTS") or cfg.max_restarts),
            "local_addr": pod_ip or None,
        }


def _interface_of(address: str) -> str | None:
    """The network interface that holds ``address`` (``lo`` for a loopback pod address)."""
    if not address:
        return None
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(a.address == address for a in addresses):
            return name
    if address.startswith("127."):
        return "lo" if "lo" in psutil.net_if_addrs() else None
    return None
