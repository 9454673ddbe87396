"""``TaskInfo``: who is running (DAG, task, run) and where its code is, for hooks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TaskInfo:
    """The running task's identity and code location, independent of the engine (plain data)."""

    dag_id: str = "adhoc"
    task_id: str = "task"
    run_id: str | None = None
    map_index: int = -1
    try_number: int = 1
    dag_file: str | None = None
    project_root: Path | None = None

    @property
    def display_name(self) -> str:
        """``dag.task`` or ``dag.task[3]`` for mapped instances: used for app names and logs."""
        suffix = f"[{self.map_index}]" if self.map_index is not None and self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{suffix}"

    @property
    def slug(self) -> str:
        """A filesystem- and DNS-friendly form of :attr:`display_name`."""
        raw = f"{self.dag_id}-{self.task_id}-{self.map_index}" if self.map_index >= 0 else f"{self.dag_id}-{self.task_id}"
        return "".join(c if c.isalnum() else "-" for c in raw.lower()).strip("-")[:63]
