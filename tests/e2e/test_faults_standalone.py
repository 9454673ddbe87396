"""Faults on a real ``airflow standalone`` (LocalExecutor), one engine each, local placement.

- A task blocked inside its engine is marked failed through the REST API: within 15 s no process
  it started is left (JVM, raylet / gcs_server, Dask scheduler / worker / nanny, torch ranks), and
  its log says it tore the engine down.
- A task that fails on try 1 and succeeds on try 2 gets a fresh session or cluster on try 2.
- Four instances of each engine's task at once on one worker (``.expand()``, parallelism 4) all
  succeed, each with an engine of its own: no port, temp-dir or name clash.

DAGs: tests/support/dags/fault_engine_dags.py. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.procs import alive
from tests.support.standalone import TEST_DAGS, Standalone, serve

ENGINES = ["spark", "ray", "dask", "torch"]
#: What must be among the blocked task's processes, so the test knows the engine really ran.
ENGINE_PROCESS = {"spark": "java", "ray": "raylet", "dask": "dask worker", "torch": "python"}


@pytest.fixture(scope="module")
def server() -> Iterator[Standalone]:
    standalone = Standalone([TEST_DAGS / "fault_engine_dags.py"], parallelism=4, extra_env={"FLYTE_E2E_DIR": ""})
    standalone.extra_env["FLYTE_E2E_DIR"] = str(standalone.home / "e2e")
    (standalone.home / "e2e").mkdir()
    yield from serve(standalone)


def _trigger(server: Standalone, dag_id: str) -> str:
    server.wait_for_dag(dag_id)
    response = server.trigger(dag_id)
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def _wait(what: str, predicate: Any, timeout: float, server: Standalone, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    server.fail(f"{what}: not seen within {timeout:.0f} s")


def _ended(server: Standalone, dag_id: str, run_id: str) -> bool:
    return any(ti["state"] in ("failed", "success", "upstream_failed") for ti in server.task_instances(dag_id, run_id))


def _run_folder(server: Standalone, run_id: str) -> Path:
    return server.home / "e2e" / run_id.replace(":", "_").replace("+", "_")


def _task_process(server: Standalone, ti_id: str, pid: int) -> psutil.Process | None:
    """The task process of one task instance, found from a process of the task (``pid``).

    The supervisor's child titles itself ``airflow worker -- <ti id>``, but an engine may retitle
    it (a local Dask scheduler calls itself ``dask scheduler [...]``): so also walk up from
    ``pid`` to the child of the LocalExecutor's worker process.
    """
    for proc in server.group():
        try:
            if f"airflow worker -- {ti_id}" in " ".join(proc.cmdline()):
                return proc
        except psutil.Error:
            continue
    try:
        proc = psutil.Process(pid)
        while proc.parent() is not None:
            parent = proc.parent()
            if "LocalExecutor" in " ".join(parent.cmdline()):
                return proc
            proc = parent
    except psutil.Error:
        return None
    return None


def _describe(procs: list[psutil.Process]) -> list[str]:
    out = []
    for proc in procs:
        try:
            out.append(f"{proc.pid} {' '.join(proc.cmdline())[:100]}")
        except psutil.Error:
            continue
    return out


@pytest.mark.parametrize("engine", ENGINES)
def test_marking_a_running_task_failed_stops_every_process_it_started(server: Standalone, engine: str) -> None:
    dag_id, task_id = f"fault_blocked_{engine}", "runs_until_marked_failed"
    run_id = _trigger(server, dag_id)
    ready = _run_folder(server, run_id) / f"{engine}.ready"
    _wait(f"{engine} blocked in its engine",
          lambda: ready.exists() or _ended(server, dag_id, run_id), 240, server)
    assert ready.exists(), f"the task ended before blocking:\n{server.failed_task_logs(dag_id, run_id)}"
    (ti,) = server.task_instances(dag_id, run_id)
    task = _task_process(server, ti["id"], json.loads(ready.read_text())["pid"])
    assert task is not None, "no task process found"
    started = task.children(recursive=True)
    names = " ".join(" ".join(p.cmdline()) for p in alive(started))
    assert ENGINE_PROCESS[engine] in names, f"no {ENGINE_PROCESS[engine]} among the task's processes: {names[:500]}"
    assert json.loads(ready.read_text())["pid"] in {task.pid, *(p.pid for p in started)}

    response = server.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
                          json={"new_state": "failed"})
    assert response.status_code == 200, response.text
    marked = time.monotonic()
    deadline = marked + 15
    while alive([task, *started]) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = alive([task, *started])
    took = time.monotonic() - marked
    assert not left, f"{took:.0f} s after marking {engine} failed, still running: {_describe(left)}"
    log = _wait("the task log's teardown line",
                lambda: (text := server.task_log(dag_id, run_id, task_id)) and "tearing down" in text and text,
                30, server)
    assert "Task killed: tearing down" in log, log[-3000:]
    print(f"{engine}: {len(started)} processes gone {took:.1f} s after the task was marked failed")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_retry_gets_a_fresh_session_or_cluster(server: Standalone, engine: str) -> None:
    dag_id, task_id = f"fault_retry_{engine}", "fails_once"
    run_id = _trigger(server, dag_id)
    run = server.wait_for_run(dag_id, run_id, timeout=300)
    assert run["state"] == "success", server.failed_task_logs(dag_id, run_id)
    (ti,) = server.task_instances(dag_id, run_id)
    assert ti["try_number"] == 2, ti
    value = server.xcom(dag_id, run_id, task_id)
    assert value["first"] and value["second"], value
    assert value["first"] != value["second"], f"try 2 reused try 1's {engine} session or cluster: {value}"
    assert "try 1 fails on purpose" in server.task_log(dag_id, run_id, task_id, try_number=1)


@pytest.mark.parametrize("engine", ENGINES)
def test_four_tasks_of_one_engine_at_once_on_one_worker(server: Standalone, engine: str) -> None:
    dag_id, task_id = f"fault_four_{engine}", "at_once"
    run_id = _trigger(server, dag_id)
    run = server.wait_for_run(dag_id, run_id, timeout=900)  # four engines start at once on 2 CPUs
    assert run["state"] == "success", server.failed_task_logs(dag_id, run_id)
    values = [server.xcom(dag_id, run_id, task_id, map_index=i) for i in range(4)]
    assert [v["value"] for v in values] == [sum(k * k for k in range(x + 1)) for x in range(1, 5)], values
    assert all(v["met"] == 4 for v in values), f"the 4 instances did not run at the same time: {values}"
    assert len({v["engine"] for v in values}) == 4, f"instances shared an engine: {values}"
    assert len({v["pid"] for v in values}) == 4, values
