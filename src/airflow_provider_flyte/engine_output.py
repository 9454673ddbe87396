"""An engine process's own output, into the task log at the level each line states.

Airflow logs whatever a task process writes to stderr at ERROR level, so a JVM's
``WARN NativeCodeLoader`` would make a successful task look failed. An engine process started
with its stdout and stderr on a pipe has each line logged through ``logger`` instead, at the
level the line carries (log4j ``yy/MM/dd HH:mm:ss WARN ...``, ``WARNING: ...``, glog
``[... W pid tid]``, Python's ``... - INFO - ...``); continuation lines (stack frames, indented
text) keep the level of the line before; anything else is INFO. The task's secrets masker
applies, as to every log line.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import IO

_LEVELS = {
    "TRACE": logging.DEBUG, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "NOTICE": logging.INFO,
    "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR, "SEVERE": logging.ERROR,
    "FATAL": logging.CRITICAL, "CRITICAL": logging.CRITICAL,
    "I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL,
}
_NAMES = "TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|SEVERE|FATAL|CRITICAL"
_PATTERNS = (
    re.compile(rf"^(?:[\d/:.,T-]+ [\d:.,]+ )?({_NAMES})\b:?"),  # log4j default, "WARNING: ..."
    re.compile(r"^\[[\d\- :,.]+ ([IWEF]) \d+ \d+\]"),  # glog (Ray's C++ components)
    re.compile(rf" - ({_NAMES}) - "),  # Python logging's "%(asctime)s - %(name)s - %(levelname)s - "
)
_CONTINUATION = re.compile(r"^(\s|at |Caused by|Traceback|\.\.\. \d+ more)")


def line_level(line: str, previous: int = logging.INFO) -> int:
    """The level ``line`` states; ``previous`` for a continuation line; INFO otherwise."""
    for pattern in _PATTERNS:
        match = pattern.search(line)
        if match:
            return _LEVELS[match.group(1)]
    if _CONTINUATION.match(line):
        return previous
    return logging.INFO


def forward(stream: IO[bytes], logger: logging.Logger, *, name: str = "engine output") -> threading.Thread:
    """Log each line of ``stream`` until it closes (a daemon thread; it ends with the process)."""

    def pump() -> None:
        level = logging.INFO
        with stream:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                level = line_level(line, level)
                logger.log(level, "%s", line)

    thread = threading.Thread(target=pump, name=name, daemon=True)
    thread.start()
    return thread
