"""A worker of the engine dies mid-task, through dag.test() with real engines (DAGs: tests/support/dags/fault_worker_dags.py).

- Dask (local, 2 workers): one worker process is SIGKILLed while pieces run; the task still completes.
- Spark (standalone master + worker on loopback): the application's executor JVM is SIGKILLed; the
  worker starts another and the job still completes.
- Ray (two-node cluster on loopback): the second node is removed mid-task (its ``ray start`` tree
  SIGKILLed); the lost pieces are retried on the head (``max_retries``) and the task completes,
  well within the documented bound.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.procs import alive, processes_matching, wait_for
from tests.support.ray_clusters import RayCluster, start_cluster
from tests.support.spark_clusters import Standalone, spark_standalone_fixture  # noqa: F401  (registers the fixture)

EXPECTED = sum(x * x for x in range(12))
RAY_BOUND_S = 180


def _kill_when_ready(ready: Path, kill: Callable[[dict[str, Any]], list[int]]) -> tuple[threading.Thread, dict]:
    """In the background: wait for the task's ready file, then ``kill(info)``; record what was killed."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            wait_for(ready.exists, timeout=240, what="the task's ready file")
            done["killed"] = kill(json.loads(ready.read_text()))
            done["at"] = time.monotonic()
        except BaseException as exc:  # reported by the test
            done["error"] = repr(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _sigkill(procs: list[psutil.Process]) -> list[int]:
    for proc in procs:
        try:
            proc.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            continue
    return [p.pid for p in procs]


def test_a_dask_task_completes_when_one_of_its_workers_is_killed(dag_runner: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ready = tmp_path / "ready.json"
    monkeypatch.setenv("FLYTE_TEST_READY_FILE", str(ready))
    thread, done = _kill_when_ready(ready, lambda info: _sigkill([psutil.Process(info["worker_pids"][0])]))
    result = dag_runner.run("fault_worker_dags.py", "fault_dask_worker")
    thread.join(timeout=30)
    assert "error" not in done, done
    assert done.get("killed"), "no worker was killed"
    assert result.state == "success", result.states
    assert result.value("survives_a_dead_worker") == EXPECTED
    assert not alive([psutil.Process(pid) for pid in done["killed"] if psutil.pid_exists(pid)])


def test_a_spark_job_completes_when_its_executor_is_killed(dag_runner: Any, tmp_path: Path,
                                                           spark_standalone: Standalone,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ready = tmp_path / "ready.json"
    monkeypatch.setenv("FLYTE_TEST_READY_FILE", str(ready))
    monkeypatch.setenv("FLYTE_TEST_SPARK_CONN", "flyte_test_fault_master")
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_FAULT_MASTER", json.dumps(
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": spark_standalone.port}))

    def kill_executor(info: dict[str, Any]) -> list[int]:
        executors = [p for p in processes_matching("CoarseGrainedExecutorBackend")
                     if info["app_id"] in " ".join(p.cmdline())]
        assert executors, f"no executor of {info['app_id']} found"
        return _sigkill(executors)

    thread, done = _kill_when_ready(ready, kill_executor)
    result = dag_runner.run("fault_worker_dags.py", "fault_spark_executor")
    thread.join(timeout=30)
    assert "error" not in done, done
    assert done.get("killed"), "no executor was killed"
    assert result.state == "success", result.states
    assert result.value("survives_a_dead_executor") == EXPECTED
    assert spark_standalone.alive_workers() >= 1  # the worker itself survived and relaunched an executor


@pytest.fixture
def two_node_ray() -> Iterator[RayCluster]:
    """A cluster of its own: this test takes its second node away."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        leftover = cluster.stop()
        assert not leftover, f"Ray processes survived: {leftover}"


def test_a_ray_task_outlives_the_removal_of_a_worker_node(dag_runner: Any, tmp_path: Path,
                                                          two_node_ray: RayCluster,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    ready = tmp_path / "ready.json"
    monkeypatch.setenv("FLYTE_TEST_READY_FILE", str(ready))
    monkeypatch.setenv("FLYTE_TEST_RAY_CONN", "flyte_test_fault_ray")
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_FAULT_RAY", json.dumps(
        {"conn_type": "flyte_ray", "host": "ray://127.0.0.1", "port": two_node_ray.client_port,
         "password": two_node_ray.token}))
    node = two_node_ray.worker_node

    def remove_node(info: dict[str, Any]) -> list[int]:
        tree = [psutil.Process(node.pid), *psutil.Process(node.pid).children(recursive=True)]
        os.killpg(node.pid, signal.SIGKILL)
        return [p.pid for p in tree]

    thread, done = _kill_when_ready(ready, remove_node)
    started = time.monotonic()
    result = dag_runner.run("fault_worker_dags.py", "fault_ray_node")
    took = time.monotonic() - started
    thread.join(timeout=30)
    assert "error" not in done, done
    assert done.get("killed"), "the node was not removed"
    assert took < RAY_BOUND_S, f"the task took {took:.0f} s after losing a node"
    assert result.state == "success", result.states
    assert result.value("outlives_a_removed_node") == EXPECTED
    wait_for(lambda: len(two_node_ray.alive_nodes()) == 1, timeout=60, what="Ray to see the node gone")
