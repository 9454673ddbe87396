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
from collections import deque
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


def stated_level(line: str) -> int | None:
    """The level ``line`` states itself (log4j, glog, Python logging), ``None`` if it states none."""
    for pattern in _PATTERNS:
        match = pattern.search(line)
        if match:
            return _LEVELS[match.group(1)]
    return None


def is_continuation(line: str) -> bool:
    """Whether ``line`` continues the one before (a stack frame, indented text, ``Caused by``)."""
    return bool(_CONTINUATION.match(line))


def line_level(line: str, previous: int = logging.INFO) -> int:
    """The level ``line`` states; ``previous`` for a continuation line; INFO otherwise."""
    level = stated_level(line)
    if level is not None:
        return level
    return previous if is_continuation(line) else logging.INFO


class ForwardedOutput(threading.Thread):
    """The thread logging an engine process's output; keeps its last ``keep`` lines in :attr:`tail`."""

    def __init__(self, stream: IO[bytes], logger: logging.Logger, *, name: str, keep: int = 0) -> None:
        super().__init__(name=name, daemon=True)
        self._stream = stream
        self._logger = logger
        self.tail: deque[str] = deque(maxlen=keep)

    def run(self) -> None:
        level = logging.INFO
        with self._stream:
            for raw in iter(self._stream.readline, b""):
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                if not line.strip():
                    continue
                level = line_level(line, level)
                self._logger.log(level, "%s", line)
                self.tail.append(line)

    def lines(self, timeout: float) -> list[str]:
        """The kept lines once the stream closed (the process exited), or after ``timeout`` seconds."""
        self.join(timeout)
        return list(self.tail)


def forward(stream: IO[bytes], logger: logging.Logger, *, name: str = "engine output",
            keep: int = 0) -> ForwardedOutput:
    """Log each line of ``stream`` until it closes (a daemon thread; it ends with the process).

    ``keep``: how many of the last lines the returned thread holds in ``tail`` (to quote them in an error).
    """
    thread = ForwardedOutput(stream, logger, name=name, keep=keep)
    thread.start()
    return thread
