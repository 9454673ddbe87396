"""A task that outlives ``execution_timeout`` inside its engine fails as a timeout and leaves nothing.

Airflow raises ``AirflowTaskTimeout`` from SIGALRM in the task's main thread, wherever it is
blocked (a Spark job, ``ray.get``, a Dask future, the elastic agent's monitor loop), then calls
``on_kill``. py4j and Ray swallow that exception; the operator's timeout guard interrupts them.
Each DAG runs in a process of its own (as Airflow runs a task); every process it ever had is
recorded while it runs, and none may be alive once the run has ended.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from airflow_provider_flyte.hygiene.processes import describe
from tests.conftest import TEST_DAGS
from tests.support.procs import REPO, alive, descendants, terminate_group

RUNNER = """
import signal, sys
from tests.support.dagrun import DagRunner
signal.signal(signal.SIGINT, signal.SIG_DFL)  # as Airflow's supervisor leaves it in a task process
result = DagRunner().run(sys.argv[1], sys.argv[2])
print("TASK_STATE=" + result.states[("job", -1)], flush=True)
"""
#: engine -> (execution_timeout in the DAG, marker files the function writes once blocked in the engine)
CASES = {
    "spark": (45, {"spark.started"}),
    "ray": (45, {"ray.started"}),
    "dask": (25, {"dask.started"}),
    "elastic": (25, {"elastic-0.started", "elastic-1.started"}),
}


#: How long a process of the task may take to end after the task process has exited.
EXIT_GRACE_S = 5


@pytest.mark.timeout(360)
@pytest.mark.parametrize("engine", list(CASES))
def test_a_task_past_its_execution_timeout_fails_as_a_timeout_and_leaves_nothing(engine, tmp_path):
    timeout_s, markers = CASES[engine]
    env = {**os.environ, "FLYTE_TEST_TIMEOUT_DIR": str(tmp_path),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))}
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, str(TEST_DAGS / "timeout_dags.py"), f"timeout_{engine}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    seen: dict[int, object] = {}
    started = time.monotonic()
    try:
        while proc.poll() is None and time.monotonic() - started < timeout_s + 240:
            for p in descendants(proc.pid):
                seen.setdefault(p.pid, p)
            time.sleep(0.3)
        if proc.poll() is None:  # stuck: kill it, then report what it printed
            os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
    elapsed = time.monotonic() - started

    assert "TASK_STATE=failed" in output, output[-4000:]
    assert {p.name for p in tmp_path.iterdir()} == markers, "it should time out inside the engine, not while starting it"
    assert "AirflowTaskTimeout" in output, output[-4000:]
    assert "Task killed: tearing down" in output  # Airflow's timeout path called on_kill
    assert elapsed < timeout_s + 90, f"{elapsed:.0f} s for a {timeout_s} s timeout"
    assert seen, "the run should have started engine processes"
    # A helper that ends on its parent's exit (multiprocessing's resource tracker reads EOF) may need a moment.
    exit_by = time.monotonic() + EXIT_GRACE_S
    while alive(seen.values()) and time.monotonic() < exit_by:  # type: ignore[arg-type]
        time.sleep(0.2)
    left = [describe(p) for p in alive(seen.values())]  # type: ignore[arg-type]
    assert left == [], left
