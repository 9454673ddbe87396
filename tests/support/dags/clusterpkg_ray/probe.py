"""Runs inside a Ray worker on the cluster: reports where it was imported from and what it sees."""

from __future__ import annotations

import os
from pathlib import Path


def where() -> dict[str, object]:
    import psutil
    import ray

    context = ray.get_runtime_context()
    return {
        "file": __file__,
        "cwd": os.getcwd(),
        "pid": os.getpid(),
        "ancestors": [p.pid for p in psutil.Process().parents()],
        "node_id": context.get_node_id(),
        "namespace": context.namespace,
        "runtime_env_var": os.environ.get("FLYTE_RAY_CLUSTER_VAR"),
        "task_env_var": os.environ.get("FLYTE_RAY_TASK_ENV_VAR"),
        "package_files": sorted(p.name for p in Path(__file__).parent.iterdir() if p.name != "__pycache__"),
    }
