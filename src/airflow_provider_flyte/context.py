"""``ctx()``: the running task's context, as in ``flyte.ctx()``.

Inside a task, ``ctx().data`` holds what the engine's *pre* step made available
(``spark_session``, ``dask_client``, ...). Outside a task ``ctx()`` returns ``None``.

Beyond ``data`` a :class:`TaskContext` offers the members of Flyte's ``TaskContext`` that mean
something on Airflow: ``action`` (the task's identity as an :class:`ActionID`), ``is_in_cluster()``,
``mode``, ``ctx()["key"]``, and the distributed rank of an Elastic worker (``rank``,
``world_size``, ``local_rank``, ``group_rank``). Flyte's ``raw_data_path``, ``output_path``,
``run_base_dir``, ``checkpoint``, ``report``, ``version``, ``code_bundle`` and ``custom_context``
belong to Flyte's own storage, reports and deployment, which Airflow does not have: they are
absent (XCom and Airflow's object storage take their place).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ActionID:
    """The running task's identity in Flyte's terms: ``name`` is the task (``dag.task[3]``), ``run_name`` the run."""

    name: str
    run_name: str | None = None
    project: str | None = None
    domain: str | None = None
    org: str | None = None


@dataclass
class TaskContext:
    """What a running task sees: engine handles in ``data`` plus its Airflow identity."""

    data: dict[str, Any] = field(default_factory=dict)
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    map_index: int = -1
    airflow_context: Any = None
    #: The task's :class:`~airflow_provider_flyte.core.task_info.TaskInfo` (identity, code location).
    task: Any = None
    #: The run's :class:`~airflow_provider_flyte.core.spec.TaskSpec`.
    spec: Any = None
    #: Where the engine runs: ``local``, ``attach``, ``in_cluster`` (``None`` for a task without a plugin).
    placement: str | None = None
    #: The task's logger (nested task calls log into it).
    logger: Any = None

    def __getitem__(self, key: str) -> Any:
        """``ctx()["spark_session"]``, as Flyte's ``TaskContext.__getitem__``."""
        return self.data.get(key)

    @property
    def action(self) -> ActionID:
        """The task's identity: ``name`` = ``dag_id.task_id`` (``[map_index]``), ``run_name`` = the run id."""
        suffix = f"[{self.map_index}]" if self.map_index is not None and self.map_index >= 0 else ""
        return ActionID(name=f"{self.dag_id}.{self.task_id}{suffix}", run_name=self.run_id, project=self.dag_id)

    @property
    def mode(self) -> str:
        """Flyte's mode: ``"remote"`` in the engine's own cluster (a pod), ``"hybrid"`` attached to a
        cluster from the worker, ``"local"`` when the engine runs embedded on the worker."""
        return {"in_cluster": "remote", "attach": "hybrid"}.get(self.placement or "", "local")

    def is_in_cluster(self) -> bool:
        """True when the task runs inside the engine's cluster (the Kubernetes pod), as Flyte's."""
        return self.mode == "remote"

    # -- distributed (PyTorch Elastic) ----------------------------------------------------------
    @property
    def rank(self) -> int | None:
        """Global rank in an Elastic worker (``RANK``); ``None`` outside one."""
        return _env_int("RANK")

    @property
    def world_size(self) -> int | None:
        return _env_int("WORLD_SIZE")

    @property
    def local_rank(self) -> int | None:
        return _env_int("LOCAL_RANK")

    @property
    def group_rank(self) -> int | None:
        """The node's rank (``GROUP_RANK``)."""
        return _env_int("GROUP_RANK")


def _env_int(key: str) -> int | None:
    value = os.environ.get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


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
