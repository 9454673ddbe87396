"""Helpers the PyTorch test DAGs import by name inside Elastic workers (the DAG folder must be on their path)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def rank_info() -> dict[str, Any]:
    """This worker's rank, world size and pid, tagged so a test can tell it came from this module."""
    import torch.distributed as dist

    return {"rank": dist.get_rank(), "world_size": dist.get_world_size(), "pid": os.getpid(),
            "helper": __name__}


def record_attempt(attempt_dir: str, **extra: Any) -> dict[str, Any]:
    """Append this worker's attempt (restart count, rank, pid) to ``attempt_dir/attempts.jsonl``."""
    entry = {
        "restart": int(os.environ["TORCHELASTIC_RESTART_COUNT"]),
        "rank": int(os.environ["RANK"]),
        "pid": os.getpid(),
        **extra,
    }
    with open(Path(attempt_dir) / "attempts.jsonl", "a") as f:
        f.write(json.dumps(entry) + "\n")
    return entry


def wait_for_attempts(attempt_dir: str, task: str, count: int, timeout: float = 60.0) -> None:
    """A file barrier: wait until ``count`` workers recorded an attempt of ``task`` (this restart)."""
    import time

    restart = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = [a for a in read_attempts(attempt_dir) if a.get("task") == task and a["restart"] == restart]
        if len(seen) >= count:
            return
        time.sleep(0.1)


def read_attempts(attempt_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(attempt_dir) / "attempts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def write_failure(context: Any) -> None:
    """``on_failure_callback``: save the task's exception text to ``<attempt_dir>/<task_id>.error``."""
    attempt_dir = context["params"].get("attempt_dir")
    if attempt_dir:
        Path(attempt_dir, f"{context['ti'].task_id}.error").write_text(str(context.get("exception")))
