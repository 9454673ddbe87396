"""Helpers for the Ray test DAGs: imported by Ray workers from the DAG folder, and probes for tests."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

OFFSET = 1000


def shift(x: int) -> int:
    """What a Ray worker computes after importing this module."""
    return x + OFFSET


def where() -> dict[str, Any]:
    """Where this module runs: the worker's pid and this file's path."""
    return {"pid": os.getpid(), "file": __file__}


def write_probe(name: str) -> dict[str, Any]:
    """Record this task's Ray processes and temp dir in ``$FLYTE_RAY_TEST_DIR/<name>.json``."""
    import psutil
    import ray

    node = ray._private.worker._global_node  # the test needs the temp dir this task's Ray uses
    info = {
        "task_pid": os.getpid(),
        "pids": [p.pid for p in psutil.Process().children(recursive=True)],
        "temp_dir": node.get_temp_dir_path() if node is not None else None,
        "num_cpus": ray.cluster_resources().get("CPU"),
    }
    folder = os.environ.get("FLYTE_RAY_TEST_DIR")
    if folder:
        tmp = Path(folder) / f".{name}.json.tmp"
        tmp.write_text(json.dumps(info))
        tmp.rename(Path(folder) / f"{name}.json")
    return info


def wait_for_peers(name: str, count: int, timeout: float = 240) -> int:
    """Mark ``name`` as running in ``$FLYTE_RAY_TEST_DIR`` and wait until ``count`` tasks are."""
    folder = Path(os.environ["FLYTE_RAY_TEST_DIR"])
    (folder / f"running-{name}").write_text("")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = len(list(folder.glob("running-*")))
        if running >= count:
            return running
        time.sleep(0.2)
    raise TimeoutError(f"only {running} of {count} Ray tasks ran at the same time")
