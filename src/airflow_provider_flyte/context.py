"""``ctx()``: the running task's context, as in ``flyte.ctx()``.

Inside a task, ``ctx().data`` holds what the engine's *pre* step made available
(``spark_session``, ``dask_client``, ...). Outside a task ``ctx()`` returns ``None``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskContext:
    """What a running task sees: engine handles in ``data`` plus its Airflow identity."""

    data: dict[str, Any] = field(default_factory=dict)
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int = -1
    airflow_context: Any = None


_current: ContextVar[TaskContext | None] = ContextVar("airflow_provider_flyte_ctx", default=None)


def ctx() -> TaskContext | None:
    """Return the running task's :class:`TaskContext`, or ``None`` outside a task."""
    return _current.get()


@contextlib.contextmanager
def task_context(task_ctx: TaskContext) -> Iterator[TaskContext]:
    """Make ``task_ctx`` what :func:`ctx` returns for the duration of the block."""
    token = _current.set(task_ctx)
    try:
        yield task_ctx
    finally:
        _current.reset(token)
