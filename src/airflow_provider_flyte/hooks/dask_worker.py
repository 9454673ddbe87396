"""What a local Dask cluster's worker processes load: the preload (``LocalCluster(preload=[this module])``)
and the code plugin. Nothing here imports Airflow or the rest of this package (``hooks/__init__`` imports
nothing either): a worker that imported Airflow took seconds longer to start and to exit, long enough on a
loaded machine for its nanny to SIGKILL it at the cluster's close.

A local cluster's scheduler lives in the task process and goes away in the task's teardown. A worker
whose heartbeat is in flight at that moment logs "Failed to communicate with scheduler during
heartbeat." at ERROR with a traceback, although nothing failed: the worker is being closed. In a
local cluster the scheduler is out of reach only while the task closes it (or stalls its event loop),
so that record goes out at WARNING, with the exception's text in place of the traceback. Every other
record of the worker is untouched.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from typing import Any

HEARTBEAT_LOST = "Failed to communicate with scheduler during heartbeat"
WORKER_LOGGER = "distributed.worker"


class SchedulerGoneHeartbeat(logging.Filter):
    """Downgrade the heartbeat-to-a-closing-scheduler record to WARNING, without its traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and str(record.msg).startswith(HEARTBEAT_LOST):
            exc = record.exc_info[1] if record.exc_info else None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            if exc is not None:
                record.msg = f"{record.msg} ({type(exc).__name__}: {exc}; the local cluster is closing)"
            record.exc_info, record.exc_text = None, None
        return True


def install() -> None:
    logger = logging.getLogger(WORKER_LOGGER)
    if not any(isinstance(f, SchedulerGoneHeartbeat) for f in logger.filters):
        logger.addFilter(SchedulerGoneHeartbeat())


def dask_setup(worker: Any) -> None:
    """distributed's preload hook: runs in the worker process before the worker starts."""
    install()


class DagModuleFinder:
    """Import Airflow's generated DAG module names (``unusual_prefix_<sha1>_<file>``) from their files."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = dict(files)

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        file = self.files.get(name)
        if file is None:
            return None
        import importlib.util

        return importlib.util.spec_from_file_location(name, file)


def install_dag_module_finder(files: dict[str, str]) -> None:
    """Add ``files`` to this process's :class:`DagModuleFinder` (installed once, at the end of ``sys.meta_path``)."""
    for finder in sys.meta_path:
        if isinstance(finder, DagModuleFinder):
            finder.files.update(files)
            return
    sys.meta_path.append(DagModuleFinder(files))


_PLUGIN_CLASSES: dict[str, type] = {}


def __getattr__(name: str) -> Any:
    """``CodeWorkerPlugin`` is built on first use, so importing this module imports no ``distributed``."""
    if name != "CodeWorkerPlugin":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _PLUGIN_CLASSES:
        from distributed.diagnostics.plugin import WorkerPlugin

        class CodeWorkerPlugin(WorkerPlugin):
            """On every current and future worker: the code folder first on ``sys.path``, DAG modules importable.

            ``setup`` is plain synchronous code: no event loop is started or awaited.
            """

            idempotent = True

            def __init__(self, path: str | None, dag_files: dict[str, str]) -> None:
                self.path = path
                self.dag_files = dict(dag_files)

            def plugin_name(self) -> str:
                digest = hashlib.sha1(repr((self.path, sorted(self.dag_files.items()))).encode()).hexdigest()
                return f"flyte-code-{digest[:12]}"

            def setup(self, worker: Any) -> None:
                if self.path:
                    prepend_sys_path(self.path)
                if self.dag_files:
                    install_dag_module_finder(self.dag_files)

        CodeWorkerPlugin.__module__ = __name__
        CodeWorkerPlugin.__qualname__ = name
        _PLUGIN_CLASSES[name] = CodeWorkerPlugin
    return _PLUGIN_CLASSES[name]


def prepend_sys_path(path: str) -> None:
    """Put ``path`` first on ``sys.path`` (moving it there if present)."""
    if sys.path and sys.path[0] == path:
        return
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
