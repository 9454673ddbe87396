"""``TaskInfo``: who is running (DAG, task, run) and where its code is, for hooks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_provider_flyte.bundle.user_code import project_root


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

    @classmethod
    def from_context(cls, context: Mapping[str, Any], *, include: tuple[str, ...] = ()) -> TaskInfo:
        """Build from an Airflow task context."""
        ti = context.get("ti")
        dag = context.get("dag")
        dag_file = getattr(dag, "fileloc", None)
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "adhoc")),
            task_id=getattr(ti, "task_id", "task"),
            run_id=context.get("run_id"),
            map_index=map_index if isinstance(map_index, int) else -1,
            try_number=getattr(ti, "try_number", 1) or 1,
            dag_file=dag_file,
            project_root=project_root(dag_file, include),
        )
