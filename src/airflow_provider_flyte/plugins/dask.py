"""``Dask``, ``Scheduler``, ``WorkerGroup``: flyteplugins' Dask config (``flyteplugins.dask.task``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_flyte.core.bounds import check_count, check_cpus_per_worker, check_worker_memory
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.resources import Resources, memory_bytes


@dataclass
class Scheduler(PluginConfig):
    """The Dask scheduler.

    :param image: container image of the scheduler pod on Kubernetes.
    :param resources: resources of the scheduler pod on Kubernetes. Locally the scheduler
        runs inside the task's process, so both fields are unused there.
    """

    image: str | None = None
    resources: Resources | None = None


@dataclass
class WorkerGroup(PluginConfig):
    """The Dask workers.

    :param number_of_workers: how many workers; locally, the ``LocalCluster``'s ``n_workers``
        (``None`` means the default, 1).
    :param image: container image of the worker pods on Kubernetes.
    :param resources: per-worker resources; locally ``cpu`` sets each worker's threads (at most 1024,
        and 16 per CPU of the machine) and ``memory`` its memory limit.
    """

    number_of_workers: int | None = 1
    image: str | None = None
    resources: Resources | None = None

    def check(self) -> None:
        check_count(
            "WorkerGroup.number_of_workers", self.number_of_workers, minimum=1,
            why="with no worker, submitted work waits forever",
            fix="use 1 or more, e.g. WorkerGroup(number_of_workers=2), or None for the default (1)",
        )
        if self.resources is not None:
            check_cpus_per_worker("WorkerGroup.resources.cpu", self.resources.cpu, self.resources.cpu_request)
        memory = self.resources.memory if self.resources is not None else None
        if memory is not None:
            limit = memory[1] if isinstance(memory, tuple) else memory
            check_worker_memory("WorkerGroup.resources.memory", memory,
                                memory_bytes(limit, field="WorkerGroup.resources.memory"))


@dataclass
class Dask(PluginConfig):
    """Run the task with a Dask cluster: a bare ``distributed.Client()`` inside the task connects to it.

    The task's client is also in ``ctx().data["dask_client"]``.

    :param scheduler: the scheduler's settings.
    :param workers: the worker group's settings.
    """

    engine_label = "Dask"

    scheduler: Scheduler = field(default_factory=Scheduler)
    workers: WorkerGroup = field(default_factory=WorkerGroup)
