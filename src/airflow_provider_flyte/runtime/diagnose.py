"""Engine errors with a known user cause, translated: what happened and the fix, with the engine's own message.

A Dask worker killed for memory surfaces as ``KilledWorker`` or a 35-frame ``CommClosedError``,
a missing Java as ``[JAVA_GATEWAY_EXITED]``. :func:`translate` recognises such errors anywhere in
the exception chain and returns a :class:`~airflow_provider_flyte.exceptions.FlyteEngineError`
that says what to change and quotes the engine's message; the original stays its ``__cause__``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_flyte.core.error_text import NO_JAVA, exception_chain
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError

_MAX_ENGINE_MESSAGE = 500


@dataclass(frozen=True)
class Cause:
    """A known cause: a pattern of the engine's message (or exception type) and what to do."""

    name: str
    pattern: re.Pattern[str]
    hint: str


CAUSES = (
    Cause(
        "JVM out of memory",
        re.compile(r"java\.lang\.OutOfMemoryError"),
        "a JVM ran out of memory (java.lang.OutOfMemoryError). Fix: give Spark more memory "
        '(spark.driver.memory for the driver, which also runs the tasks of a local run; spark.executor.memory '
        "for executors), bring less data back to the driver (collect, toPandas), or split the work into "
        "smaller pieces",
    ),
    Cause(
        "out of memory",
        re.compile(r"KilledWorker|all those workers died|exceeded \d+% memory budget|OutOfMemoryError"
                   r"|running low on memory|Cannot allocate memory", re.IGNORECASE),
        "a worker was killed, most likely for using more memory than it has. Fix: give the workers more "
        'memory (e.g. WorkerGroup(resources=Resources(memory="4Gi")), spark.executor.memory, the Ray '
        "node's memory), or split the work into smaller pieces",
    ),
    Cause(
        "port in use",
        re.compile(r"Address already in use|could not bind|BindException|port .* already in use", re.IGNORECASE),
        "a port the engine needs is already in use on this machine. Fix: stop what holds it, or leave the "
        "port settings unset (spark.driver.port, spark.ui.port, ray_start_params['port']) so the engine "
        "picks a free one",
    ),
    Cause(
        "no Java",
        re.compile(r"JAVA_GATEWAY_EXITED|Java gateway process exited|JAVA_HOME is not set"
                   r"|No such file or directory: '?java'?", re.IGNORECASE),
        NO_JAVA,
    ),
)


def diagnose(exc: BaseException) -> Cause | None:
    """The first known cause found in ``exc`` or its chain (``__cause__`` / ``__context__``)."""
    for current in exception_chain(exc):
        text = f"{type(current).__name__}: {_message(current)}"
        for cause in CAUSES:
            if cause.pattern.search(text):
                return cause
    return None


def translate(exc: BaseException, engine: str) -> FlyteEngineError | None:
    """A :class:`FlyteEngineError` for an engine error with a known cause; ``None`` otherwise.

    Errors of this provider (already clear) and non-``Exception`` signals (timeouts, interrupts)
    are never translated.
    """
    if not isinstance(exc, Exception) or isinstance(exc, (FlyteConfigError, FlyteEngineError)):
        return None
    cause = diagnose(exc)
    if cause is None:
        return None
    return FlyteEngineError(f"{engine}: {cause.hint}. The engine's error: {type(exc).__name__}: {_message(exc)}")


def _message(exc: BaseException) -> str:
    try:
        text = " ".join(str(exc).split())
    except Exception:
        text = ""
    return text if len(text) <= _MAX_ENGINE_MESSAGE else text[: _MAX_ENGINE_MESSAGE - 3] + "..."
