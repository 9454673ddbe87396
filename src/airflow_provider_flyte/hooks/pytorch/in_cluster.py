"""PyTorch Elastic in a PyTorchJob pod: this pod is one node; the training operator says which.

The Kubeflow training operator gives every replica ``PET_RDZV_ENDPOINT``, ``PET_RDZV_BACKEND``,
``PET_NNODES`` (``min:max``), ``PET_NPROC_PER_NODE``, ``PET_MAX_RESTARTS`` and ``PET_RDZV_ID``
(what ``torchrun`` reads), or, without an elastic policy, ``MASTER_ADDR``/``MASTER_PORT``,
``WORLD_SIZE`` and ``RANK``. The pod's agent launches its local workers with the same env defaults,
watchdog and failure report as locally; the node holding global rank 0 returns its value.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook
from airflow_provider_flyte.plugins.pytorch import parse_nnodes
from airflow_provider_flyte.runtime.spec import IN_CLUSTER

_DEFAULT_MASTER_PORT = "23456"


class InClusterElasticHook(FlyteElasticHook):
    """One node of the job: rendezvous where the training operator says."""

    placement = IN_CLUSTER
    single_node = False

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
        return {
            "run_id": env.get("PET_RDZV_ID") or None,
            "min_nodes": min_nodes,
            "max_nodes": max_nodes,
            "nproc_per_node": int(nproc) if nproc.isdigit() else cfg.nproc_per_node,
            "rdzv_backend": env.get("PET_RDZV_BACKEND") or "c10d",
            "rdzv_endpoint": endpoint,
            "max_restarts": int(env.get("PET_MAX_RESTARTS") or cfg.max_restarts),
        }
