"""Who is running: a :class:`TaskInfo` read from an Airflow task context (and where the task's code is)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.bundle.user_code import project_root
from airflow_provider_flyte.core.task_info import TaskInfo


def task_info_from_context(context: Mapping[str, Any], *, include: tuple[str, ...] = ()) -> TaskInfo:
    """Build from an Airflow task context."""
    ti = context.get("ti")
    dag = context.get("dag")
    dag_file = getattr(dag, "fileloc", None)
    map_index = getattr(ti, "map_index", -1)
    return TaskInfo(
        dag_id=str(getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "adhoc")),
        task_id=getattr(ti, "task_id", "task"),
        run_id=context.get("run_id"),
        map_index=map_index if isinstance(map_index, int) else -1,
        try_number=getattr(ti, "try_number", 1) or 1,
        dag_file=dag_file,
        project_root=project_root(dag_file, include),
    )
