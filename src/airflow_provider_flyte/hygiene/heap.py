"""An engine's ``pre`` without the cyclic garbage collector walking the task process's heap.

A task process holds Airflow's objects (about 160,000 tracked by the collector) before its engine's
client is imported. Importing a client is allocation-heavy: pyspark's Spark Connect client
(pandas, pyarrow, grpc) triggers about 180 young, 16 middle and one full collection, each walking
objects that all outlive the import. On this project's 2-CPU machine pausing the collector cut the
import's CPU time by 14% for the Spark Connect client and 26% for PyTorch Elastic (``bench/bench_heap.py``). So ``pre`` runs with the collector paused, and what
exists when it ends (Airflow's objects, the engine's modules and client) is moved to the permanent
generation (:func:`gc.freeze`), which later collections skip, until the hook's ``post`` thaws it
(:func:`thaw`). The PyTorch hook freezes the heap around its launch for the same reason.

Sessions may overlap (threads of one process): the collector is paused while any ``pre`` runs and
re-enabled, if it was enabled before the first one, when the last one ends.
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_paused = 0  # pre() calls running now
_enabled_before = True  # the collector's state before the first of them


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic collection during the block; what exists at its end is frozen (see :func:`thaw`)."""
    global _paused, _enabled_before
    with _lock:
        if _paused == 0:
            _enabled_before = gc.isenabled()
            gc.disable()
        _paused += 1
    try:
        yield
    finally:
        with _lock:
            _paused -= 1
            if _paused == 0:
                gc.freeze()
                if _enabled_before:
                    gc.enable()


def thaw() -> None:
    """Return frozen objects to the collector (``post``: what ``pre`` made may now be garbage)."""
    gc.unfreeze()
