"""Servers that accept TCP and never answer (tests/support/silent_server.py) fail a task within the connection's
``connect_timeout`` plus ``ANSWER_MARGIN_S``, naming the address; SIGTERM during a silent Ray GCS connect
reaches the teardown and the task process exits.

The DAG (tests/support/dags/silent_servers.py) runs through ``dag.test()`` in a child process, bounded: on code
that hangs, the child is killed and the test fails instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable

import pytest

from tests.support import silent_server
from tests.support.dagrun import child_dagrun, finish_child_run, start_child_run
from tests.support.procs import alive, descendants, wait_for
from tests.support.silent_server import SilentServer

silent_servers = silent_server.silent_servers  # the fixture

DAG_FILE = "silent_servers.py"
CONNECT_TIMEOUT_S = 3
#: The documented margin beyond connect_timeout (clusters.ANSWER_MARGIN_S; not imported: the test runs on old code).
ANSWER_MARGIN_S = 30
#: Airflow's start in the child and the engines' imports, on a loaded 2-CPU machine.
STARTUP_S = 120
NO_ANSWER = "accepted the connection but did not answer within"
#: A standalone master's bound starts once the driver JVM is up (spark-submit's start, before it, is not the
#: master's): the JVM's start on a loaded 2-CPU machine.
JVM_START_S = 30

def _connections(monkeypatch: pytest.MonkeyPatch, servers: dict[str, SilentServer], timeout: float) -> None:
    kinds = {"dask": ("flyte_dask", "tcp://127.0.0.1"), "spark": ("flyte_spark", "sc://127.0.0.1"),
             "ray": ("flyte_ray", "127.0.0.1"), "master": ("flyte_spark", "spark://127.0.0.1")}
    for engine, server in servers.items():
        conn_type, host = kinds[engine]
        monkeypatch.setenv(f"AIRFLOW_CONN_FLYTE_SILENT_{engine.upper()}", json.dumps(
            {"conn_type": conn_type, "host": host, "port": server.port, "extra": {"connect_timeout": timeout}}))


def test_silent_dask_spark_connect_and_ray_gcs_fail_within_connect_timeout(
        silent_servers: Callable[[], SilentServer], monkeypatch: pytest.MonkeyPatch) -> None:
    servers = {engine: silent_servers() for engine in ("dask", "spark", "ray", "master")}
    _connections(monkeypatch, servers, CONNECT_TIMEOUT_S)
    bound = CONNECT_TIMEOUT_S + ANSWER_MARGIN_S
    proc = start_child_run(DAG_FILE, "silent_servers")
    out, ended = finish_child_run(proc, timeout=STARTUP_S + 4 * bound + JVM_START_S)
    assert ended, f"the DAG run hung on a silent server (killed after {STARTUP_S + 4 * bound}s)\n{out[-4000:]}"
    run = child_dagrun(out)
    assert run["state"] == "failed", out[-4000:]
    for task_id, engine, limit in (("dask_scheduler", "dask", bound), ("spark_connect", "spark", bound),
                                   ("ray_gcs", "ray", bound), ("spark_master", "master", bound + JVM_START_S)):
        task = run["tasks"][task_id]
        assert task["state"] == "failed", (task_id, out[-4000:])
        assert task["seconds"] <= limit, f"{task_id} took {task['seconds']:.0f}s > {limit}s"
        conn = f"flyte_silent_{engine}"
        assert f"connection '{conn}' (" in out and f"127.0.0.1:{servers[engine].port}" in out, (engine, out[-4000:])
    assert out.count(NO_ANSWER) >= 4, out[-4000:]
    assert "the task's function ran" not in out
    print({task_id: round(task["seconds"], 1) for task_id, task in run["tasks"].items()})
    print("\n".join(line for line in out.splitlines() if NO_ANSWER in line))
    for engine, server in servers.items():
        assert server.accepted, f"the {engine} task never reached its server"


#: The Ray connect_timeout of the SIGTERM test: long enough that the task cannot fail on its own before
#: the kill has to land.
KILL_CONNECT_TIMEOUT_S = 30
#: SIGTERM must end the task process within this (the teardown, the task's failure, the process exit).
KILL_LANDS_S = 15


def test_sigterm_while_ray_connects_to_a_silent_gcs_reaches_teardown(
        silent_servers: Callable[[], SilentServer], monkeypatch: pytest.MonkeyPatch) -> None:
    server = silent_servers()
    _connections(monkeypatch, {"ray": server}, KILL_CONNECT_TIMEOUT_S)
    proc = start_child_run(DAG_FILE, "silent_ray_kill")
    try:
        # The TCP probe's connection, then Ray's own: the task is now inside ray.init.
        wait_for(lambda: len(server.accepted) >= 2 or proc.poll() is not None, timeout=STARTUP_S,
                 what="ray.init to connect to the silent GCS")
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        children = alive(descendants(proc.pid))
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        out, ended = finish_child_run(proc, timeout=KILL_LANDS_S)
        took = time.monotonic() - killed_at
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert ended, f"the task process was still connecting {KILL_LANDS_S}s after SIGTERM\n{out[-4000:]}"
    assert took < KILL_CONNECT_TIMEOUT_S, "ended only when the connect failed by itself, not by the kill"
    assert "Task killed: tearing down Ray" in out, f"SIGTERM did not reach the teardown\n{out[-4000:]}"
    assert "killed (SIGTERM) while waiting for connection 'flyte_silent_ray'" in out, out[-4000:]
    assert child_dagrun(out)["tasks"]["ray_gcs"]["state"] == "failed", out[-4000:]
    assert alive(children) == [], f"processes of the task left: {alive(children)}"
    print(f"exited {took:.1f}s after SIGTERM")


def test_sigterm_stops_a_wait_after_running_the_previous_handler() -> None:
    """The guard alone: the handler that was there (Airflow's on_kill) runs, then the wait ends with
    TaskKilledError, and the previous handler is back afterwards."""
    import threading

    from airflow_provider_flyte.exceptions import TaskKilledError
    from airflow_provider_flyte.hygiene.signals import sigterm_stops_wait

    calls: list[int] = []

    def on_kill(signum: int, frame: object) -> None:
        calls.append(signum)

    previous = signal.signal(signal.SIGTERM, on_kill)
    try:
        with pytest.raises(TaskKilledError, match=r"while waiting for the server at h:1"), \
                sigterm_stops_wait("the server at h:1"):
            os.kill(os.getpid(), signal.SIGTERM)
            threading.Event().wait(10)  # a Python-level wait, as the connect probes' are
        assert calls == [signal.SIGTERM]
        assert signal.getsignal(signal.SIGTERM) is on_kill
    finally:
        signal.signal(signal.SIGTERM, previous)
