"""Preloaded into every worker process of a local Dask cluster (``LocalCluster(preload=[this module])``).

A local cluster's scheduler lives in the task process and goes away in the task's teardown. A worker
whose heartbeat is in flight at that moment logs "Failed to communicate with scheduler during
heartbeat." at ERROR with a traceback, although nothing failed: the worker is being closed. In a
local cluster the scheduler is out of reach only while the task closes it (or stalls its event loop),
so that record goes out at WARNING, with the exception's text in place of the traceback. Every other
record of the worker is untouched. Imports nothing beyond the standard library.
"""

from __future__ import annotations

import logging
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
