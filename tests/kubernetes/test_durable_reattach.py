"""Durable reattach (Airflow >= 3.3) on a real ``airflow standalone`` against the simulator.

The kubernetes placement stores the job it created (kind, name, namespace, ``uid``) in the task's
``task_state_store``; the retry after a worker's SIGKILL goes back to exactly that object:

- the job succeeded while no worker watched: the retry reads its outcome, nothing is created again
  (reattaching by labels deleted the finished job and ran the task a second time);
- the name now belongs to another object (deleted and recreated with the same name, labels and
  annotations, another ``uid``: apache/airflow#71743): it is not adopted; the retry creates its own job
  and leaves the other alone (reattaching by labels adopted it, and deleted it as the task's own).

The standalone is shared by the module; the ``k8s`` fixture fails a test that leaves an object or a
pod process behind. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from tests.support.k8s.fixtures import CONN_ID
from tests.support.k8s.server import KubeApiServer
from tests.support.k8s.simulator import OperatorSimulator
from tests.support.standalone import TEST_DAGS, Standalone, serve

DAG_ID, TASK_ID = "k8s_durable_in_worker", "sleep_then_answer"
GROUP, VERSION, PLURAL = "kubernetes.dask.org", "v1", "daskjobs"


@pytest.fixture(scope="module")
def server(k8s_cluster: tuple[KubeApiServer, OperatorSimulator], tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[Standalone]:
    api, _sim = k8s_cluster
    store = tmp_path_factory.mktemp("k8s-durable-store")
    env = {**api.connection_env(CONN_ID), "FLYTE_TEST_CONN_ID": CONN_ID,
           "AIRFLOW__FLYTE__STAGING_URI": f"file://{store}",
           "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "600"}
    standalone = Standalone([TEST_DAGS / "k8s_durable_dag.py"], parallelism=4, extra_env=env)
    yield from serve(standalone)


def _wait(what: str, predicate: Any, timeout: float, server: Standalone, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    server.fail(f"{what}: not seen within {timeout:.0f} s")


def _ti(server: Standalone, run_id: str) -> dict[str, Any]:
    (ti,) = [t for t in server.task_instances(DAG_ID, run_id) if t["task_id"] == TASK_ID]
    return ti


def _objects(k8s: Any) -> list[dict[str, Any]]:
    return [obj for res, obj in k8s.server.store.all_objects() if res.plural == PLURAL]


def _kill_the_worker_once_the_job_runs(server: Standalone, k8s: Any, seconds: int) -> tuple[str, dict[str, Any]]:
    server.wait_for_dag(DAG_ID)
    response = server.trigger(DAG_ID, {"seconds": seconds})
    assert response.status_code == 200, response.text
    run_id = str(response.json()["dag_run_id"])
    _wait("the DaskJob's pods running", lambda: _objects(k8s) and k8s.sim.live_processes(), 240, server)
    ti_id = _ti(server, run_id)["id"]
    victims = _wait("the task's process", lambda: _task_processes(server, ti_id), 60, server)
    for proc in victims:
        proc.send_signal(signal.SIGKILL)
    (job,) = _objects(k8s)
    return run_id, job


def test_a_job_that_succeeded_while_the_worker_was_dead_is_read_not_run_again(server: Standalone,
                                                                              k8s: Any) -> None:
    run_id, job = _kill_the_worker_once_the_job_runs(server, k8s, seconds=5)
    run = server.wait_for_run(DAG_ID, run_id, timeout=300)
    assert run["state"] == "success", server.failed_task_logs(DAG_ID, run_id)
    ti = _ti(server, run_id)
    assert ti["try_number"] == 2, f"the task did not retry: {ti}"
    assert server.xcom(DAG_ID, run_id, TASK_ID) == 5
    assert k8s.server.count(verb="create", resource=PLURAL) == 1, "the retry ran the job a second time"
    log = server.task_log(DAG_ID, run_id, TASK_ID, try_number=2)
    assert f"Reattaching by uid to DaskJob default/{job['metadata']['name']}" in log, log[-3000:]
    assert job["metadata"]["uid"] in log, log[-3000:]
    assert not _objects(k8s)


def test_a_same_named_object_with_another_uid_is_not_adopted(server: Standalone, k8s: Any) -> None:
    run_id, job = _kill_the_worker_once_the_job_runs(server, k8s, seconds=10)
    name = job["metadata"]["name"]
    # before the retry (20 s after the failure): the job is replaced by another object of the same name
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
    k8s.sim.wait_for(lambda: not _objects(k8s) and not k8s.sim.live_processes(), timeout=15,
                     what="the first job and its pods gone")
    meta = job["metadata"]
    # its pods never start (an image the simulated kubelet cannot pull): it stays running, inert, and
    # reading its outcome would fail the task
    inert = json.loads(json.dumps(job["spec"]).replace('"sim/venv:1"', '"sim/venv:pull-fails"'))
    stranger = {"apiVersion": job["apiVersion"], "kind": job["kind"], "spec": inert,
                "metadata": {"name": name, "namespace": "default", "labels": meta.get("labels") or {},
                             "annotations": meta.get("annotations") or {}}}
    created = k8s.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, stranger)
    other_uid = created["metadata"]["uid"]
    assert other_uid != meta["uid"]
    try:
        run = server.wait_for_run(DAG_ID, run_id, timeout=300)
        assert run["state"] == "success", server.failed_task_logs(DAG_ID, run_id)
        assert _ti(server, run_id)["try_number"] == 2
        assert server.xcom(DAG_ID, run_id, TASK_ID) == 10
        log = server.task_log(DAG_ID, run_id, TASK_ID, try_number=2)
        assert f"now a different object (uid {other_uid}), not adopted" in log, log[-3000:]
        left = _objects(k8s)
        assert [o["metadata"]["uid"] for o in left] == [other_uid], (
            f"the other object was adopted (deleted as the task's own): {[o['metadata'] for o in left]}")
        assert k8s.server.count(verb="create", resource=PLURAL) == 3, "the retry did not create its own job"
    finally:
        k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)
        k8s.sim.wait_for(lambda: not _objects(k8s) and not k8s.sim.live_processes(), timeout=30,
                         what="the other object and its pods gone")


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
