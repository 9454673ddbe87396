"""Dask embedded on the worker: a ``LocalCluster`` on 127.0.0.1 sized by the config, closed in post."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from typing import Any

from airflow_provider_flyte.bundle.user_code import modules_to_pickle_by_value
from airflow_provider_flyte.core.bounds import check_local_fit, check_worker_memory
from airflow_provider_flyte.core.spec import LOCAL
from airflow_provider_flyte.hooks import dask_worker
from airflow_provider_flyte.hooks.dask import (
    CLOSE_TIMEOUT_S,
    FlyteDaskHook,
    close_clients_of,
    worker_memory_limit,
    worker_threads,
)
from airflow_provider_flyte.hygiene.child_processes import spawn_safe
from airflow_provider_flyte.hygiene.engine_logs import quiet_engine_loggers
from airflow_provider_flyte.hygiene.processes import descendant_pids, stop, stop_new_descendants
from airflow_provider_flyte.plugins.rebuild import resources_of

#: Seconds a worker process gets between SIGTERM and SIGKILL.
_PROCESS_EXIT_TIMEOUT_S = 10
#: A spawned worker before and after it renames itself (setproctitle).
_WORKER_MARKERS = ("multiprocessing.spawn", "dask worker")


class LocalDaskHook(FlyteDaskHook):
    """``WorkerGroup.number_of_workers`` worker processes on loopback; ``ctx().data["dask_client"]``."""

    placement = LOCAL

    def start(self) -> dict[str, Any]:
        import dask.config
        from distributed import Client, LocalCluster

        kwargs = self.cluster_kwargs()
        kwargs.update(self.environment_sizing(kwargs))
        # Workers keep a heartbeat to the closing scheduler out of the error level (see the module).
        kwargs["preload"] = [*(dask.config.get("distributed.worker.preload", None) or []), WORKER_PRELOAD]
        # Before any process starts: more workers than this machine can hold would never come up.
        check_local_fit("WorkerGroup.number_of_workers", kwargs["n_workers"], kwargs.get("memory_limit"),
                        engine="Dask", threads_per_worker=kwargs.get("threads_per_worker"))
        local_dir = self.scratch_dir("dask", tag=self.task.slug)

        # Nannies spawn worker processes at start and again on restarts (memory limit, crash):
        # keep spawning safe inside a real Airflow task until the cluster is closed.
        spawning = spawn_safe()
        spawning.__enter__()
        self.add_cleanup(spawning.__exit__, None, None, None)

        # distributed's INFO chatter (~60 lines: every comm, client, nanny) out of the task log until the close
        # is done (cleanups run in reverse); its warnings stay. The lines of this hook say what matters.
        self.add_cleanup(quiet_engine_loggers(ENGINE_LOGGERS))
        quiet = _QuietClosedComms()  # registered before the close, so removed after it (cleanups run in reverse)
        for name in _CLOSE_CHATTER:
            logging.getLogger(name).addFilter(quiet)
            self.add_cleanup(logging.getLogger(name).removeFilter, quiet)

        self.log.info("Starting a local Dask cluster: %s", kwargs)
        existing = descendant_pids(recursive=False)
        try:
            cluster = LocalCluster(local_directory=local_dir, **kwargs)
        except BaseException:
            _reap_new_workers(existing)  # workers of a cluster that failed (or was killed) half-way up
            raise
        self.add_cleanup(_close_cluster, cluster, _worker_pids(cluster), self.log)

        # A bare Client() reads "scheduler-address"; restored (with "scheduler") after the task.
        config = dask.config.set({"scheduler-address": cluster.scheduler_address, "scheduler": "dask.distributed"})
        self.add_cleanup(config.__exit__, None, None, None)

        client = Client(cluster, set_as_default=True)
        self.add_cleanup(client.close, CLOSE_TIMEOUT_S)
        # Clients the task opened on this cluster and left open are closed before the cluster.
        self.add_cleanup(close_clients_of, cluster.scheduler_address, client)
        self.log.info("Dask scheduler at %s with %d worker process(es) (%s thread(s) each), no dashboard",
                      cluster.scheduler_address, len(cluster.workers), kwargs.get("threads_per_worker", "default"))

        self._ship_code(client)
        return {"dask_client": client}

    def environment_sizing(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Threads and memory limit per worker from ``TaskEnvironment.resources``, where ``WorkerGroup.resources``
        sets none (docs/porting-from-flyte.md: the environment's resources size Dask's threads/memory)."""
        resources = resources_of(self.spec)
        sizing: dict[str, Any] = {}
        if resources is None:
            return sizing
        threads = worker_threads(resources)
        if threads is not None and "threads_per_worker" not in kwargs:
            sizing["threads_per_worker"] = threads
        memory = worker_memory_limit(resources)
        if memory is not None and "memory_limit" not in kwargs:
            check_worker_memory("TaskEnvironment.resources.memory", resources.memory, memory)
            sizing["memory_limit"] = memory
        return sizing

    def _ship_code(self, client: Any) -> None:
        """Make the task's code reachable on every worker.

        The DAG folder goes first on the workers' ``sys.path``. Functions from the DAG file
        are registered to pickle by value, but distributed pickles task graphs with plain
        ``pickle`` first (by reference; dask/distributed#8607), so workers also learn to import
        the DAG module under Airflow's generated name, from the DAG file itself.
        """
        import cloudpickle  # distributed pickles with upstream cloudpickle

        fn = self.python_callable
        dag_modules = modules_to_pickle_by_value(fn) if fn is not None else []
        files = {m.__name__: m.__file__ for m in dag_modules if getattr(m, "__file__", None)}
        root = str(self.task.project_root) if self.task.project_root is not None else None
        if root is not None or files:
            plugin = dask_worker.CodeWorkerPlugin(root, files)
            client.register_plugin(plugin, name=plugin.plugin_name())
        self.pickle_by_value(cloudpickle)


#: distributed's loggers in the task process (scheduler, nannies, clients), INFO to WARNING while the task runs.
ENGINE_LOGGERS = ("distributed",)

#: Loggers of the scheduler side that report a comm closed by the cluster's own close at INFO, with
#: a traceback attached.
_CLOSE_CHATTER = ("distributed.batched", "distributed.core")


WORKER_PRELOAD = dask_worker.__name__


class _QuietClosedComms(logging.Filter):
    """Keep distributed's INFO/DEBUG "comm closed" records, without the traceback of the closed stream.

    The close of a local cluster closes its workers' comms; distributed logs that at INFO with the
    ``CommClosedError`` attached. The line stays (at its own level); warnings and errors are untouched.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and record.exc_info and record.exc_info[0] is not None:
            from distributed.comm.core import CommClosedError

            if issubclass(record.exc_info[0], CommClosedError):
                record.exc_info = None
                record.exc_text = None
        return True


def _worker_pids(cluster: Any) -> list[int]:
    return [pid for pid in (getattr(w, "pid", None) for w in list(cluster.workers.values())) if pid]


def _close_cluster(cluster: Any, started_pids: Iterable[int], log: logging.Logger) -> None:
    """Close the workers gracefully within ``CLOSE_TIMEOUT_S``, then the cluster; make sure no worker
    process it ran (at start or now) survives, and say how each worker process ended.

    ``LocalCluster.close(timeout=)`` bounds the whole close, but closes each nanny with ``Nanny.close()``'s
    own default, 5 s, of which the worker process gets 80 %: a worker that needs longer to close and exit
    (a loaded machine) is SIGKILLed after 4 s ("Worker process still alive after 4.0 seconds, killing").
    The nannies are closed here first with the provider's timeout; the cluster's close then finds them closed.
    """
    pids = {*started_pids, *_worker_pids(cluster)}
    processes = _worker_processes(cluster)
    started = time.monotonic()
    try:
        with contextlib.suppress(Exception):  # a cluster already closing: its own close below does the rest
            cluster.sync(_close_nannies, cluster, CLOSE_TIMEOUT_S)
        cluster.close(timeout=CLOSE_TIMEOUT_S)
    finally:
        stop(list(pids), grace_s=_PROCESS_EXIT_TIMEOUT_S, what="Dask worker process")
    codes = [proc.exitcode for proc in processes]
    if codes:
        log.info("Dask worker process(es) stopped in %.1f s, exit code(s) %s", time.monotonic() - started,
                 ", ".join(str(code) for code in codes))


async def _close_nannies(cluster: Any, timeout: float) -> None:
    import asyncio

    nannies = [w for w in list(cluster.workers.values()) if hasattr(w, "close")]
    await asyncio.gather(*(nanny.close(timeout=timeout, reason="flyte-task-done") for nanny in nannies),
                         return_exceptions=True)


def _worker_processes(cluster: Any) -> list[Any]:
    """The worker processes (``distributed``'s ``AsyncProcess``) of the cluster's nannies: their exit codes
    (negative: the signal that ended it) stay readable after the nannies dropped them."""
    found = []
    for nanny in list(cluster.workers.values()):
        process = getattr(getattr(nanny, "process", None), "process", None)
        if process is not None:
            found.append(process)
    return found


def _is_worker(proc: Any) -> bool:
    cmdline = " ".join(proc.cmdline())
    return any(marker in cmdline for marker in _WORKER_MARKERS)


def _reap_new_workers(existing: Iterable[int]) -> None:
    """Terminate spawned worker processes of this process (its children) that appeared during the task."""
    stop_new_descendants(existing, match=_is_worker, recursive=False, grace_s=_PROCESS_EXIT_TIMEOUT_S,
                         what="Dask worker process")
