"""Engine chatter out of the task log: the engines' own INFO loggers raised to WARNING while a task runs.

distributed logs about 60 INFO lines per local Dask task (scheduler and nanny start, every comm, every
client, the close), py4j one per closed gateway connection, Ray "Started a local Ray instance.". The
provider's own lines say what matters instead (engine ready in N s, where, how big; torn down in N s).
For the task's duration :func:`quiet_engine_loggers` sets each named logger whose level is unset or INFO
to WARNING, and puts the level back afterwards; a level set to DEBUG (someone debugging the engine) is kept.
WARNING and above still reach the log, and so does anything the user's code logs through its own loggers.

:class:`StartupNotices`, on the logger that forwards an engine process's output (``spark``), drops the
engine's known start-up notices, WARNING or below, that say nothing about the task: the JVM's "Using
incubator modules", Hadoop's "Unable to load native-hadoop library", log4j's default-profile banner. Any
other line of the process (the user's own prints among them) is untouched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable


def quiet_engine_loggers(names: Iterable[str]) -> Callable[[], None]:
    """Raise each logger in ``names`` from INFO (or unset) to WARNING; return the function that restores them."""
    saved: list[tuple[logging.Logger, int]] = []
    for name in names:
        logger = logging.getLogger(name)
        if logger.level in (logging.NOTSET, logging.INFO):
            saved.append((logger, logger.level))
            logger.setLevel(logging.WARNING)

    def restore() -> None:
        for logger, level in saved:
            if logger.level == logging.WARNING:  # unless something set it again meanwhile
                logger.setLevel(level)

    return restore


class StartupNotices(logging.Filter):
    """Drop records at WARNING or below whose message matches one of ``patterns``; keep every other record."""

    def __init__(self, patterns: Iterable[str]) -> None:
        super().__init__()
        self._pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.WARNING or not self._pattern.search(record.getMessage())
