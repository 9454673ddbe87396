"""Queueing with Kueue, against the simulator and the Kueue stand-in (tests/support/k8s/kueue.py).

The stand-in is not Kueue: it admits (unsuspends) jobs labelled ``kueue.x-k8s.io/queue-name`` by a count per
queue. What is shown: a job waiting for admission is not a job that cannot start (the startup timeout counts from
admission), the task log says it is queued and when it was admitted, and a queue that never admits fails the task
after the queue timeout, naming the queue, with its job deleted. Both waiting paths: the worker
(``deferrable=False``, two tasks at once in threads) and the triggerer (``dag.test()``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.manifests.kueue import QUEUE_LABEL
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS
from tests.support.k8s.kueue import KueueStandIn

STARTUP_S = 5.0  # the first job gets running within it; the second waits for the whole first run
ADMITTED = re.compile(r"SparkApplication \S+/(\S+) admitted after ([0-9.]+) s in Kueue queue '([^']+)'")


@pytest.fixture
def remote_tasks(k8s: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    import remote_tasks

    return remote_tasks


def _output(capfd: pytest.CaptureFixture[str]) -> str:
    """What the task wrote (its hook's log goes to the process's stdout and stderr, not to ``logging``)."""
    out, err = capfd.readouterr()
    return out + err


def _created(k8s: Any, since: int) -> list[dict[str, Any]]:
    return [e.obj for e in k8s.server.store.events_after(since)
            if e.type == "ADDED" and e.res.plural == "sparkapplications"]


def test_a_queue_admitting_one_job_at_a_time_runs_two_spark_tasks_in_turn_without_a_startup_timeout(
        k8s: Any, remote_tasks: Any, capfd: pytest.CaptureFixture[str]) -> None:
    env = TaskEnvironment(name="queued", image="sim/venv:1", kueue_queue="one-at-a-time")
    config = Spark(spark_conf={"spark.executor.instances": "1"}).validated()
    results: dict[str, Any] = {}

    def run(task_id: str) -> None:
        spec = build_spec(TaskInfo(dag_id="kueue", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                          config, env, k8s.conn_id)
        spec = spec.with_changes(options={"deferrable": False, "startup_timeout": STARTUP_S, "poll_interval": 0.5,
                                          "kueue_queue": "one-at-a-time"})
        try:
            results[task_id] = TaskRunner(spec, config, remote_tasks.spark_sum_of_squares).run((4,), {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            results[task_id] = exc

    since = k8s.server.store.resource_version
    with KueueStandIn(k8s.server.store, {"one-at-a-time": 1}) as kueue:
        threads = [threading.Thread(target=run, args=(task_id,)) for task_id in ("first", "second")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
    log = _output(capfd)
    assert results == {"first": 14, "second": 14}, log[-3000:]
    apps = _created(k8s, since)
    assert len(apps) == 2
    for app in apps:  # created suspended, labelled for the queue
        assert app["spec"]["suspend"] is True and app["metadata"]["labels"][QUEUE_LABEL] == "one-at-a-time"
    # the stand-in admitted one, then the other once the first had finished; the second waited past the
    # startup timeout, which did not fail it: the timeout counts from admission
    assert [a[0] for a in kueue.admissions] == ["one-at-a-time"] * 2
    waited = kueue.admissions[1][3]
    assert waited > STARTUP_S, kueue.admissions
    assert "did not start within" not in log
    second = kueue.admissions[1][2]
    assert f"{second} queued in Kueue queue 'one-at-a-time'" in log  # (the first may be admitted before a look)
    admitted = {m.group(1): float(m.group(2)) for m in ADMITTED.finditer(log)}
    assert set(admitted) == {app["metadata"]["name"] for app in apps}
    assert admitted[second] > STARTUP_S and admitted[second] == pytest.approx(waited, abs=3), (admitted, waited)


def test_the_connection_names_the_queue_and_a_task_of_its_own_with_an_empty_one_opts_out(
        k8s: Any, remote_tasks: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    conn_var = f"AIRFLOW_CONN_{k8s.conn_id.upper()}"
    conn = json.loads(__import__("os").environ[conn_var])
    conn["extra"] = {**(conn.get("extra") or {}), "kueue_queue": "from-connection"}
    monkeypatch.setenv(conn_var, json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_KUEUE_QUEUE", "from-setting")
    config = Spark(spark_conf={"spark.executor.instances": "1"}).validated()
    since = k8s.server.store.resource_version
    with KueueStandIn(k8s.server.store, {"from-connection": 1}) as kueue:
        for task_id, queue in (("conn", None), ("none", "")):
            env = TaskEnvironment(name="queued", image="sim/venv:1", kueue_queue=queue)
            spec = build_spec(TaskInfo(dag_id="kueue", task_id=task_id, run_id="manual__1",
                                       project_root=TEST_DAGS), config, env, k8s.conn_id)
            options = {"deferrable": False, "startup_timeout": 60, "poll_interval": 0.5,
                       **({"kueue_queue": queue} if queue is not None else {})}
            spec = spec.with_changes(options=options)
            assert TaskRunner(spec, config, remote_tasks.spark_sum_of_squares).run((3,), {}) == 5
    conn_app, free_app = _created(k8s, since)
    assert conn_app["metadata"]["labels"][QUEUE_LABEL] == "from-connection" and conn_app["spec"]["suspend"] is True
    assert QUEUE_LABEL not in free_app["metadata"]["labels"] and "suspend" not in free_app["spec"]
    assert [a[0] for a in kueue.admissions] == ["from-connection"]


def test_a_deferred_task_waits_in_the_queue_past_its_startup_timeout_and_is_admitted(
        k8s: Any, remote_tasks: Any, dag_runner: Any, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "true")
    monkeypatch.setenv("FLYTE_TEST_KUEUE_QUEUE", "opens-later")
    monkeypatch.setenv("FLYTE_TEST_STARTUP_S", "4")
    with KueueStandIn(k8s.server.store, {}) as kueue:
        opened = threading.Event()

        def open_later() -> None:  # the queue gets room 10 s after the job was created
            apps = k8s.server.store.resource("sparkoperator.k8s.io", "sparkapplications")
            while not k8s.server.store.list(apps)[0]:
                if opened.wait(0.2):
                    return
            if not opened.wait(10):
                kueue.quotas["opens-later"] = 1

        opener = threading.Thread(target=open_later, daemon=True)
        opener.start()
        try:
            result = dag_runner.run("k8s_kueue_dags.py", "k8s_kueue")
        finally:
            opened.set()
            opener.join(5)
    log = _output(capfd)
    assert result.states[("count_in_queue", -1)] == "success", log[-3000:]
    assert result.value("count_in_queue") == 7
    assert kueue.admissions and kueue.admissions[0][3] >= 9, kueue.admissions
    assert "queued in Kueue queue 'opens-later'" in log
    (waited,) = [float(m.group(2)) for m in ADMITTED.finditer(log)]
    assert waited >= 9
    assert "did not start within" not in log


def test_a_task_its_queue_never_admits_fails_after_the_queue_timeout_and_its_job_is_deleted(
        k8s: Any, remote_tasks: Any, dag_runner: Any, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "true")
    monkeypatch.setenv("FLYTE_TEST_KUEUE_QUEUE", "never-admits")
    monkeypatch.setenv("FLYTE_TEST_STARTUP_S", "2")
    monkeypatch.setenv("FLYTE_TEST_KUEUE_TIMEOUT_S", "5")
    since = k8s.server.store.resource_version
    started = time.monotonic()
    with KueueStandIn(k8s.server.store, {}) as kueue:
        result = dag_runner.run("k8s_kueue_dags.py", "k8s_kueue")
    log = _output(capfd)
    assert result.states[("count_in_queue", -1)] == "failed"
    assert time.monotonic() - started >= 5
    assert not kueue.admissions
    assert "not admitted by Kueue queue 'never-admits' within 5 s" in log, log[-3000:]
    assert "did not start within" not in log
    (app,) = _created(k8s, since)
    assert app["spec"]["suspend"] is True
    assert k8s.server.count(verb="delete", resource="sparkapplications") >= 1
    assert not k8s.server.store.list(k8s.server.store.resource("sparkoperator.k8s.io", "sparkapplications"))[0]
