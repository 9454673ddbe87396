"""Sane bounds for quantities (counts, memory), against this machine when an engine runs on it.

A count of 0 workers waits forever, 10**6 workers never start, a worker with 1 MiB of memory is
killed before it can report why: each is refused with a
:class:`~airflow_provider_flyte.exceptions.FlyteConfigError` where it is first known, at
construction for absolute bounds, at engine start for this machine's size.
"""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: Below this a worker process (Dask, a Spark JVM) cannot even start reliably.
MIN_WORKER_MEMORY = 64 * 2**20
#: More workers than any one task's cluster sensibly has (a typo such as 10**6 fails at parse time).
MAX_WORKERS = 10_000
#: Local worker processes per CPU of this machine before starting them is refused.
LOCAL_WORKERS_PER_CPU = 4
#: CPUs of one worker or node: more than the largest machines have (a Dask worker runs a thread per CPU,
#: a Ray node as many tasks at once: ``cpu=10**9`` would be a million threads).
MAX_CPUS_PER_WORKER = 1024
#: Threads of one local worker per CPU of this machine before starting it is refused (I/O-bound work
#: may want a few per CPU; more only thrashes).
LOCAL_THREADS_PER_CPU = 16


def machine_cpus() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_memory() -> int:
    """Bytes of memory of this machine."""
    import psutil

    return int(psutil.virtual_memory().total)


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def check_count(field: str, value: Any, *, minimum: int, fix: str, why: str = "", maximum: int = MAX_WORKERS) -> None:
    """``minimum <= value <= maximum`` for an int count (``None``: unset, accepted)."""
    if value is None:
        return
    if isinstance(value, bool):
        raise FlyteConfigError(field, value, "not a count", fix)
    if value < minimum:
        problem = f"must be at least {minimum}" + (f" ({why})" if why else "")
        raise FlyteConfigError(field, value, problem, fix)
    if value > maximum:
        raise FlyteConfigError(field, value, f"must be at most {maximum}",
                               f"use at most {maximum}; a larger count is almost always a typo")


def check_cpus_per_worker(field: str, value: Any, cpus: float | None = None) -> None:
    """A worker's or node's CPUs (``cpus``, else ``value``) are at most :data:`MAX_CPUS_PER_WORKER`."""
    cpus = value if cpus is None else cpus
    if cpus is not None and cpus > MAX_CPUS_PER_WORKER:
        raise FlyteConfigError(
            field, value, f"more than {MAX_CPUS_PER_WORKER} CPUs for one worker (no machine has that many; each CPU "
            "is a thread or a task slot of the worker)", f"ask for at most {MAX_CPUS_PER_WORKER} CPUs per worker, "
            "and for more workers instead",
        )


def check_worker_memory(field: str, value: Any, limit_bytes: int | None) -> None:
    """A worker's memory is at least :data:`MIN_WORKER_MEMORY` (``1Mi`` is a typo for ``1Gi``)."""
    if limit_bytes is not None and limit_bytes < MIN_WORKER_MEMORY:
        raise FlyteConfigError(
            field, value, f"a worker needs at least {human_bytes(MIN_WORKER_MEMORY)} of memory "
            f"(this is {human_bytes(limit_bytes)}; the worker would be killed as soon as it starts)",
            'use a Kubernetes quantity such as "1Gi" or "512Mi"',
        )


def check_local_fit(field: str, workers: int, memory_per_worker: int | None, *, engine: str,
                    cpus: int | None = None, memory: int | None = None, threads_per_worker: int | None = None) -> None:
    """``workers`` local worker processes fit this machine (CPUs and memory), else a clear error.

    :param cpus: this machine's CPUs (default: :func:`machine_cpus`).
    :param memory: this machine's memory in bytes (default: :func:`machine_memory`).
    :param threads_per_worker: each worker's threads, at most :data:`LOCAL_THREADS_PER_CPU` per CPU.
    """
    cpus = machine_cpus() if cpus is None else cpus
    memory = machine_memory() if memory is None else memory
    fix = f"ask for fewer workers, or run on a cluster (conn_id=...) that has them ({engine} runs on this " \
          "worker when the task has no conn_id)"
    most = max(1, cpus * LOCAL_WORKERS_PER_CPU)
    if workers > most:
        raise FlyteConfigError(
            field, workers, f"this machine has {cpus} CPU(s); more than {most} local {engine} worker processes "
            "would not start in any useful time", fix,
        )
    _check_local_threads(threads_per_worker, cpus, engine)
    each = max(memory_per_worker or 0, MIN_WORKER_MEMORY)
    if workers * each > memory:
        raise FlyteConfigError(
            field, workers, f"{workers} workers x {human_bytes(each)} is more than this machine's memory "
            f"({human_bytes(memory)})", fix,
        )


def _check_local_threads(threads: int | None, cpus: int, engine: str) -> None:
    most = cpus * LOCAL_THREADS_PER_CPU
    if threads is not None and threads > most:
        raise FlyteConfigError(
            "WorkerGroup.resources.cpu", threads, f"this machine has {cpus} CPU(s); more than {most} threads in one "
            f"local {engine} worker ({LOCAL_THREADS_PER_CPU} per CPU) would only thrash",
            f"ask for at most {most} CPUs per worker (Resources(cpu=...)), or run on a cluster (conn_id=...) "
            f"that has them ({engine} runs on this worker when the task has no conn_id)",
        )
