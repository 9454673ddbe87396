"""Deferral on a real ``airflow standalone`` (scheduler, LocalExecutor, triggerer, API server) against the simulator.

- A deferred Spark task completes through the real triggerer, and its driver log reaches the task log.
- Marking a deferred task failed through the REST API deletes its object within 10 s (the trigger's
  ``on_kill``), and its simulated pods stop.
- Restarting the triggerer mid-wait neither loses nor duplicates the job: one create, the task succeeds.
- SIGKILL of a worker's task process while it waits in the worker (``deferrable=False``): the
  retry finds the same object by the task's labels (exactly one create seen by the API server).

The standalone is shared by the module; the ``k8s`` fixture fails a test that leaves an object or
a pod process behind. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.support.k8s.fixtures import CONN_ID
from tests.support.k8s.server import KubeApiServer
from tests.support.k8s.simulator import OperatorSimulator
from tests.support.procs import alive
from tests.support.standalone import TEST_DAGS, Standalone, serve

DAG_FILE = TEST_DAGS / "k8s_standalone_dag.py"


@pytest.fixture(scope="module")
def server(k8s_cluster: tuple[KubeApiServer, OperatorSimulator], tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Standalone]:
    api, _sim = k8s_cluster
    store = tmp_path_factory.mktemp("k8s-standalone-store")
    env = {**api.connection_env(CONN_ID), "FLYTE_TEST_CONN_ID": CONN_ID,
           "AIRFLOW__FLYTE__STAGING_URI": f"file://{store}",
           "AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE": "true",
           "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600",
           # a killed triggerer's triggers move to another once its heartbeat is this stale
           "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15"}
    standalone = Standalone([DAG_FILE], parallelism=4, extra_env=env)
    yield from serve(standalone)
    runs = [p for p in (store / "runs").rglob("*") if p.is_file()] if (store / "runs").exists() else []
    assert not runs, f"staged runs left in the store (bundles are a shared cache; runs are not): {runs[:10]}"


def _trigger(server: Standalone, dag_id: str, conf: dict[str, Any] | None = None) -> str:
    server.wait_for_dag(dag_id)
    response = server.trigger(dag_id, conf)
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


def _wait_for_the_trigger(server: Standalone, k8s: Any, plural: str) -> None:
    """Until the triggerer runs the trigger: it reads the object (the deferred worker no longer does).

    A task marked failed before any triggerer has picked its trigger up gets no ``on_kill``
    (Airflow only cancels running triggers); docs/kubernetes.md names that window.
    """
    # the trigger opens (or joins) the triggerer's shared watch of the kind, then GETs its job once
    _wait("the triggerer reading the job", lambda: k8s.server.count(verb="watch", resource=plural) >= 1
          and k8s.server.count(verb="get", resource=plural) >= 1, 60, server, interval=0.2)


def _ti(server: Standalone, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    (ti,) = [t for t in server.task_instances(dag_id, run_id) if t["task_id"] == task_id]
    return ti


def _objects(k8s: Any, plural: str) -> list[dict[str, Any]]:
    return [obj for res, obj in k8s.server.store.all_objects() if res.plural == plural]


def test_a_deferred_spark_task_completes_through_the_triggerer(server: Standalone, k8s: Any) -> None:
    run_id = _trigger(server, "k8s_deferred_spark")
    seen_deferred = _wait("count_rows deferred",
                          lambda: _ti(server, "k8s_deferred_spark", run_id, "count_rows")["state"] == "deferred",
                          240, server)
    assert seen_deferred
    run = server.wait_for_run("k8s_deferred_spark", run_id, timeout=300)
    assert run["state"] == "success", server.failed_task_logs("k8s_deferred_spark", run_id)
    assert server.xcom("k8s_deferred_spark", run_id, "count_rows") == 999
    assert k8s.server.count(verb="create", resource="sparkapplications") == 1
    assert not _objects(k8s, "sparkapplications"), "the SparkApplication was not deleted after success"
    log = server.task_log("k8s_deferred_spark", run_id, "count_rows")
    assert "Log of pod" in log and "-driver" in log, log[-3000:]
    assert "b'" not in log.split("Log of pod", 1)[1][:200], "the driver log reached the task log as a bytes repr"


def test_marking_a_deferred_task_failed_deletes_its_object_within_10_s(server: Standalone, k8s: Any) -> None:
    dag_id, task_id = "k8s_sleeper", "sleep_then_answer"
    run_id = _trigger(server, dag_id, {"seconds": 600})
    _wait("the DaskJob's pods running", lambda: _objects(k8s, "daskjobs") and k8s.sim.live_processes(), 240, server)
    _wait(f"{task_id} deferred", lambda: _ti(server, dag_id, run_id, task_id)["state"] == "deferred", 120, server)
    _wait_for_the_trigger(server, k8s, "daskjobs")
    response = server.api("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}",
                          json={"new_state": "failed"})
    assert response.status_code == 200, response.text
    marked = time.monotonic()
    _wait("the DaskJob deleted", lambda: not _objects(k8s, "daskjobs"), 10, server, interval=0.2)
    took = time.monotonic() - marked
    assert k8s.server.count(verb="delete", resource="daskjobs") >= 1
    k8s.sim.wait_for(lambda: not k8s.sim.live_processes(), timeout=15, what="the job's pod processes stopped")
    assert _ti(server, dag_id, run_id, task_id)["state"] == "failed"
    print(f"object deleted {took:.1f} s after the task was marked failed")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_restarting_the_triggerer_mid_wait_neither_loses_nor_duplicates_the_job(server: Standalone, k8s: Any,
                                                                                sig: signal.Signals) -> None:
    """SIGTERM: a clean stop (no ``on_kill``). SIGKILL of the triggerer and its trigger runner: a crash;
    the replacement takes the trigger over once the dead one's heartbeat is stale."""
    dag_id, task_id = "k8s_sleeper", "sleep_then_answer"
    run_id = _trigger(server, dag_id, {"seconds": 45})
    _wait(f"{task_id} deferred", lambda: _ti(server, dag_id, run_id, task_id)["state"] == "deferred", 240, server)
    old = server.component("triggerer")
    assert old, "no triggerer process in the standalone's group"
    for proc in old:
        proc.send_signal(sig)
    deadline = time.monotonic() + 60
    while alive(old) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not alive(old), f"the triggerer did not stop: {alive(old)}"
    assert _objects(k8s, "daskjobs"), "stopping the triggerer deleted the job (on_kill ran on shutdown)"
    replacement = server.spawn("triggerer", "--skip-serve-logs")
    # the standalone goes on with the replacement (same process group: stopped with it)
    run = server.wait_for_run(dag_id, run_id, timeout=300)
    assert run["state"] == "success", server.failed_task_logs(dag_id, run_id)
    assert server.xcom(dag_id, run_id, task_id) == 45
    assert k8s.server.count(verb="create", resource="daskjobs") == 1
    assert _ti(server, dag_id, run_id, task_id)["try_number"] == 1, "the task was retried, not resumed"
    assert not _objects(k8s, "daskjobs")
    assert replacement.poll() is None, "the replacement triggerer exited"


def test_sigkill_of_the_waiting_worker_then_the_retry_reattaches_to_the_same_object(server: Standalone,
                                                                                   k8s: Any) -> None:
    dag_id, task_id = "k8s_sleeper_in_worker", "sleep_then_answer"
    run_id = _trigger(server, dag_id, {"seconds": 40})
    _wait("the DaskJob's pods running", lambda: _objects(k8s, "daskjobs") and k8s.sim.live_processes(), 240, server)
    ti_id = _ti(server, dag_id, run_id, task_id)["id"]
    victims = _wait("the task's process", lambda: _task_processes(server, ti_id), 60, server)
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    run = server.wait_for_run(dag_id, run_id, timeout=300)
    assert run["state"] == "success", server.failed_task_logs(dag_id, run_id)
    ti = _ti(server, dag_id, run_id, task_id)
    assert ti["try_number"] == 2, f"the task did not retry: {ti}"
    assert server.xcom(dag_id, run_id, task_id) == 40
    assert k8s.server.count(verb="create", resource="daskjobs") == 1, "the retry created a second DaskJob"
    log = server.task_log(dag_id, run_id, task_id, try_number=2)
    assert "reattach" in log.lower(), log[-3000:]
    assert not _objects(k8s, "daskjobs")


def _task_processes(server: Standalone, ti_id: str) -> list[psutil.Process]:
    """The task process of one task instance: the supervisor's child titles itself ``airflow worker -- <ti id>``."""
    found = []
    for proc in server.group():
        try:
            if f"airflow worker -- {ti_id}" in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found
