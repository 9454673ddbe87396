"""Issue 27: a successful local task's log carries the provider's lines, not its engine's chatter or notices.

Run as a worker runs a task (its own process; its whole output is the task log), one task per engine:
* no WARNING line in the task's part of the log that is not about the user's code or environment (Python's
  ``py.warnings`` about installed packages stay): no "spark.local.dir will be overridden", no OMP_NUM_THREADS
  banner, no "Worker process still alive after 4.0 seconds, killing";
* no INFO chatter of the engines' own loggers (distributed, Ray, py4j) nor the JVM's start-up notices;
* Dask: its teardown SIGKILLs no worker process (the exit codes the provider reads from the nannies'
  processes are all 0; a signal is a negative code).
"""

from __future__ import annotations

import re
import signal

import pytest

from tests.conftest import TEST_DAGS
from tests.support.procs import start_dag_process, terminate_group

DAG_FILE = "quiet_engines_dag.py"
RUN_TIMEOUT_S = 400
#: structlog's console line: "<time> [<level>] <message> [<logger>] ..."
LINE = re.compile(r"^\S+ \[(\w+)\s*\] (.*) \[([\w.]+)\]")
#: Loggers whose records are about the user's own code or environment.
USERS = ("py.warnings",)
ENGINE_CHATTER = ("distributed", "ray", "py4j")
JVM_NOTICES = ("Using incubator modules", "NativeCodeLoader", "default log4j profile", "Setting default log level")


def _task_lines(log: str) -> list[tuple[str, str, str]]:
    """(level, message, logger) of each line from the task's start to its end."""
    start = log.index("[DAG TEST] running task")
    end = log.index("[DAG TEST] end task", start)
    found = []
    for line in log[start:end].splitlines():
        match = LINE.match(line)
        if match:
            found.append((match.group(1), match.group(2), match.group(3)))
    return found


@pytest.mark.parametrize("engine", ["dask", "ray", "spark", "elastic"])
def test_successful_local_task_log_has_no_engine_warning_or_chatter(engine, monkeypatch):
    # The OMP line is the provider's default at work: an OMP_NUM_THREADS the worker's environment already has
    # (left in this test process by an earlier test of the suite) is the user's, and is left unsaid.
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    proc = start_dag_process(TEST_DAGS / DAG_FILE, f"quiet_{engine}")
    try:
        log, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
    assert "DAGRUN_STATE=success" in log, log[-6000:]
    lines = _task_lines(log)
    assert any("ready in" in message for _, message, _ in lines), log[-3000:]

    warnings = [f"{message} [{logger}]" for level, message, logger in lines
                if level in ("warning", "error", "critical") and not logger.startswith(USERS)]
    assert not warnings, "WARNING lines of a successful task:\n" + "\n".join(warnings)
    assert "spark.local.dir will be overridden" not in log
    assert "OMP_NUM_THREADS environment variable for each process" not in log

    chatter = [f"{message} [{logger}]" for level, message, logger in lines
               if level in ("info", "debug") and logger.split(".")[0] in ENGINE_CHATTER]
    assert not chatter, f"{len(chatter)} INFO lines of the engine's own loggers:\n" + "\n".join(chatter[:20])
    notices = [message for _, message, _ in lines if any(n in message for n in JVM_NOTICES)]
    assert not notices, notices
    assert "dashboard at:" not in log  # no link to a dashboard that is off (and gone when the task ends)

    if engine == "dask":
        stopped = [m for _, m, _ in lines if m.startswith("Dask worker process(es) stopped in ")]
        assert len(stopped) == 1, "no line with the worker processes' exit codes:\n" + log[-4000:]
        codes = [int(c) for c in stopped[0].rsplit("exit code(s) ", 1)[1].split(", ")]
        assert codes == [0, 0], f"worker processes ended by signal(s): {codes}"
        assert "killed by signal" not in log and "still alive after" not in log
    if engine == "elastic":
        assert any(m.startswith("OMP_NUM_THREADS=1 for each of the 2 worker processes") for _, m, _ in lines), \
            log[-4000:]
