"""Signal guards around a task's engine: SIGTERM runs the teardown, ``execution_timeout`` always lands.

Used by the runner for every engine and every placement. The signal helpers that hooks use too
(:class:`~airflow_provider_flyte.hygiene.signals.SavedSignals`, ``keep_signal_handlers``,
``sigterm_stops_wait``) live in :mod:`airflow_provider_flyte.hygiene.signals`, below the hooks.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar, Protocol

log = logging.getLogger(__name__)

#: Seconds after ``execution_timeout`` fired before a task still inside its engine is interrupted.
INTERRUPT_GRACE_S = 1.0
#: Seconds a killed task's function may take to unwind before its engine is torn down under it.
KILL_UNWIND_GRACE_S = 5.0


class Interruptible(Protocol):
    engine_name: ClassVar[str]

    def interrupt(self) -> None: ...


class terminate_on_sigterm:
    """Turn SIGTERM into ``SystemExit`` while the engine runs, unless someone handles it already.

    Airflow's task runner installs a handler that calls ``on_kill``; a bare process
    (``dag.test()``, a script, the in-cluster entrypoint) would die on SIGTERM without running
    ``post``. This makes ``finally`` blocks run so the engine is torn down either way.
    """

    def __enter__(self) -> None:
        self._previous: Any = None
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current in (signal.SIG_DFL, None):
            self._previous = current
            signal.signal(signal.SIGTERM, _raise_system_exit)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


class interrupt_on_timeout:
    """On Airflow's ``execution_timeout`` (SIGALRM), time out as Airflow does, then make sure it lands.

    Airflow's handler raises ``AirflowTaskTimeout`` where the main thread is blocked. Some engine
    clients swallow it there: py4j wraps it in a ``Py4JError`` and goes on waiting for the JVM;
    Ray's ``ray.get`` ignores any exception from a signal handler but ``KeyboardInterrupt``. If
    the task is still inside the engine :data:`INTERRUPT_GRACE_S` later, the hook's
    ``interrupt()`` stops it. The timeout is re-raised if another exception took its place, so
    Airflow still reports a timeout and calls ``on_kill``.
    """

    def __init__(self, hook: Interruptible) -> None:
        self._hook = hook
        self._previous: Any = None
        self._raised: BaseException | None = None
        self._lock = threading.Lock()
        self._in_engine = False
        self._sigint: Any = None

    def __enter__(self) -> interrupt_on_timeout:
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGALRM)
            if callable(current):
                self._previous = current
                signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    @contextlib.contextmanager
    def in_engine(self) -> Iterator[None]:
        """Mark the span in which the hook's ``interrupt()`` may be called."""
        with self._lock:
            self._in_engine = True
        try:
            yield
        finally:
            with self._lock:  # an interrupt already delivered is raised here at the latest, before post
                self._in_engine = False

    def _on_alarm(self, signum: int, frame: Any) -> None:
        # Airflow's task process resets SIGINT to SIG_DFL; a Python handler is what lets
        # ``_thread.interrupt_main`` (Ray's interrupt) raise KeyboardInterrupt in this thread.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, None):
            self._sigint = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=self._interrupt_if_stuck, name="flyte-timeout-interrupt", daemon=True).start()
        try:
            self._previous(signum, frame)
        except BaseException as exc:
            self._raised = exc
            raise

    def _interrupt_if_stuck(self) -> None:
        time.sleep(INTERRUPT_GRACE_S)
        with self._lock:
            if self._in_engine:
                log.warning("The timeout did not stop %s: interrupting it", self._hook.engine_name)
                self._hook.interrupt()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGALRM, self._previous)
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
        if self._raised is not None and exc is not None and exc is not self._raised:
            raise self._raised from exc


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
