"""Signal handlers around an engine: put back what an engine replaces, let SIGTERM end a wait.

Engines that replace signal handlers (``ray.init``, torch's elastic agent) put them back with
:class:`SavedSignals` / :func:`keep_signal_handlers`; a task waiting on a server that may never
answer wraps the wait in :func:`sigterm_stops_wait`. The runner's own guards (SIGTERM and
``execution_timeout`` around the whole task) are in :mod:`airflow_provider_flyte.runtime.guards`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator, Sequence
from typing import Any


@contextlib.contextmanager
def sigterm_stops_wait(what: str) -> Iterator[None]:
    """While the task waits for a server to answer, SIGTERM ends the wait instead of only queuing a teardown.

    Airflow's handler calls ``on_kill`` (the teardown) and returns, so a task waiting on a server
    that never answers would go on waiting until its timeout. Here the handler that was there
    before runs first (the teardown; in a bare process, ``SystemExit``), then
    :class:`~airflow_provider_flyte.exceptions.TaskKilledError` is raised where the wait is. The
    wait must be one a signal handler can run in (Python-level waits: a condition, a selector).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop_waiting(signum: int, frame: Any) -> None:
        if previous == signal.SIG_IGN:
            return
        signal.signal(signal.SIGTERM, previous)
        if callable(previous):
            previous(signum, frame)
        from airflow_provider_flyte.exceptions import TaskKilledError

        raise TaskKilledError(f"the task was killed (SIGTERM) while waiting for {what}")

    signal.signal(signal.SIGTERM, stop_waiting)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is stop_waiting:
            signal.signal(signal.SIGTERM, previous)


class SavedSignals:
    """Signal handlers (and torch's env var) an engine replaces without putting them back."""

    def __init__(self, names: Sequence[str] = ("SIGTERM",), env: Sequence[str] = ()) -> None:
        self.env = {key: os.environ.get(key) for key in env}
        self.handlers: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for name in names:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self.handlers[int(sig)] = signal.getsignal(sig)

    def restore(self) -> None:
        for sig, handler in self.handlers.items():
            if handler is not None:
                signal.signal(sig, handler)
        from airflow_provider_flyte.hygiene.environ import restore

        restore(self.env)

    def forward(self, sig: int) -> None:
        """Give a signal the engine intercepted to the handler that was there before (Airflow's ``on_kill``)."""
        handler = self.handlers.get(int(sig))
        if callable(handler):
            handler(int(sig), None)
        elif handler == signal.SIG_DFL:
            raise SystemExit(128 + int(sig))


@contextlib.contextmanager
def keep_signal_handlers(*names: str) -> Iterator[None]:
    """Put back the handlers of ``names`` after the block (``ray.init`` replaces SIGTERM's)."""
    saved = SavedSignals(names or ("SIGTERM",))
    try:
        yield
    finally:
        saved.restore()
