"""Waiting by watch, through Airflow: a deferred task's trigger reads its job from the triggerer's shared watch.

``dag.test()`` runs the trigger in line; the request log of the simulated API server is the measure.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def on_k8s(k8s: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    return k8s


def test_a_deferred_task_waits_on_one_watch_not_by_polling(on_k8s: Any, dag_runner: Any,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "true")
    monkeypatch.setenv("FLYTE_TEST_TIMEOUT_S", "20")  # the task waits 20 s deferred, then its deadline ends it
    result = dag_runner.run("k8s_seed_dags.py", "k8s_slow")
    assert result.states[("outlives_its_timeout", -1)] == "failed"
    server = on_k8s.server
    # one GET when the trigger starts, one when the worker finishes a job that did not succeed (does the name
    # still hold its object? remote/watch.finish); a poll every 2 s would make about ten
    assert server.count(verb="get", resource="daskjobs") == 2
    assert server.count(verb="watch", resource="daskjobs") == 1
    # the worker: its reattach check and its sweep of expired kept objects; the trigger: the shared watch's one list
    assert server.count(verb="list", resource="daskjobs") <= 3
    assert server.count(verb="delete", resource="daskjobs") >= 1
    on_k8s.sim.wait_for(lambda: not on_k8s.sim.live_processes(), timeout=30, what="the job's pods stopped")
