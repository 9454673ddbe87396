"""The engine-chatter helpers (issue 27): levels raised for a task and put back, known notices dropped."""

from __future__ import annotations

import logging

from airflow_provider_flyte.hygiene.engine_logs import StartupNotices, quiet_engine_loggers


def test_info_loggers_go_to_warning_for_the_task_and_come_back():
    unset, info, debug = (logging.getLogger(f"flyte-test-engine.{n}") for n in ("unset", "info", "debug"))
    info.setLevel(logging.INFO)
    debug.setLevel(logging.DEBUG)  # someone debugging the engine: kept
    child = logging.getLogger("flyte-test-engine.info.child")
    restore = quiet_engine_loggers([unset.name, info.name, debug.name])
    assert (unset.level, info.level, debug.level) == (logging.WARNING, logging.WARNING, logging.DEBUG)
    assert not child.isEnabledFor(logging.INFO) and child.isEnabledFor(logging.WARNING)
    restore()
    assert (unset.level, info.level, debug.level) == (logging.NOTSET, logging.INFO, logging.DEBUG)


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("spark", level, __file__, 1, message, None, None)


def test_startup_notices_drop_only_the_named_lines_up_to_warning():
    notices = StartupNotices([r"NativeCodeLoader: Unable to load"])
    native = "26/12/08 01:51:17 WARN NativeCodeLoader: Unable to load native-hadoop library for your platform"
    assert not notices.filter(_record(logging.WARNING, native))
    assert notices.filter(_record(logging.ERROR, native))  # an error is never hidden
    assert notices.filter(_record(logging.WARNING, "26/12/08 WARN TaskSetManager: Lost task 0.0"))
    assert notices.filter(_record(logging.INFO, "a print() of the user's UDF"))
