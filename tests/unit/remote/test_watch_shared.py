"""remote/shared_watch + remote/waiting: many deferred tasks in one triggerer share one watch of their kind.

Against the simulator's API server (tests/support/k8s/server.py); the request log is the measure.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger  # noqa: F401 - imported before the clock runs
from tests.support.k8s.fixtures import CONN_ID, k8s_api  # noqa: F401
from tests.support.k8s.server import KubeApiServer
from tests.support.k8s.waiters import create_jobs, set_state, trigger, wait_all, waiting_requests

N = 20
RUN_S = 40.0  # each task GETs its job once when it starts waiting: 20 GETs + 2 lists + 2 watches


def _complete_later(server: KubeApiServer, names: list[str], after: float, done_at: dict[str, float],
                    once: Callable[[], bool] = lambda: True) -> threading.Timer:
    """Complete the jobs ``after`` s after ``once()`` holds (checked every 0.1 s from the start)."""
    def complete() -> None:
        while not once():
            time.sleep(0.1)
        time.sleep(after)
        for name in names:
            set_state(server, name, "COMPLETED")
            done_at[name] = time.time()

    timer = threading.Timer(0, complete)
    timer.daemon = True
    timer.start()
    return timer


def test_twenty_waiting_tasks_share_one_watch_and_all_resume(k8s_api: KubeApiServer) -> None:  # noqa: F811
    names = [f"job-{i}" for i in range(N)]
    create_jobs(k8s_api, names)
    for name in names:
        set_state(k8s_api, name, "RUNNING")
    k8s_api.clear_requests()
    done_at: dict[str, float] = {}
    start = time.time()
    timer = _complete_later(k8s_api, names, RUN_S, done_at)
    try:
        results = asyncio.run(wait_all({name: trigger(name, CONN_ID) for name in names}))
    finally:
        timer.cancel()
    minutes = (time.time() - start) / 60
    assert sorted(results) == sorted(names), "a task never resumed"
    assert {payload["status"] for payload, _ in results.values()} == {"succeeded"}
    lags = [at - done_at[name] for name, (_, at) in results.items()]
    assert max(lags) < 5.0, f"completion to resume took {max(lags):.1f} s"
    watches = k8s_api.request_log(verb="watch")
    assert {r.resource for r in watches} == {"sparkapplications", "pods"}
    assert len([r for r in watches if r.resource == "sparkapplications"]) == 1, "one watch of the kind, not one per task"
    per_task_minute = waiting_requests(k8s_api) / N / minutes
    assert per_task_minute <= 2.0, f"{per_task_minute:.2f} requests per waiting task per minute"


def test_a_410_gone_on_the_watch_relists_and_misses_no_completion(k8s_api: KubeApiServer) -> None:  # noqa: F811
    names = ["gone-a", "gone-b"]
    create_jobs(k8s_api, names)
    gone = k8s_api.inject_fault(status=410, verb="watch", resource="sparkapplications", times=1)
    done_at: dict[str, float] = {}
    timer = _complete_later(k8s_api, names, 1.0, done_at, once=lambda: gone.hits == 1)
    try:
        results = asyncio.run(asyncio.wait_for(
            wait_all({name: trigger(name, CONN_ID, poll_interval=30) for name in names}), 60))
    finally:
        timer.cancel()
    assert {payload["status"] for payload, _ in results.values()} == {"succeeded"}
    assert k8s_api.count(verb="watch", resource="sparkapplications", status=410) == 1
    # the relist after the 410: one initial list, one after
    assert k8s_api.count(verb="list", resource="sparkapplications") == 2
    assert max(at - done_at[name] for name, (_, at) in results.items()) < 5.0


def test_a_refused_watch_falls_back_to_a_slow_shared_poll_and_completes(k8s_api: KubeApiServer, caplog) -> None:  # noqa: F811
    names = ["nowatch-a", "nowatch-b"]
    create_jobs(k8s_api, names)
    refused = k8s_api.inject_fault(status=403, verb="watch", resource="sparkapplications", times=100)
    done_at: dict[str, float] = {}
    timer = _complete_later(k8s_api, names, 1.0, done_at, once=lambda: refused.hits == 1)
    try:
        results = asyncio.run(asyncio.wait_for(
            wait_all({name: trigger(name, CONN_ID, poll_interval=1, selector=False) for name in names}), 60))
    finally:
        timer.cancel()
    assert {payload["status"] for payload, _ in results.values()} == {"succeeded"}
    assert k8s_api.count(verb="watch", resource="sparkapplications") == 1, "a refused watch is not asked again"
    lists = k8s_api.request_log(verb="list", resource="sparkapplications")
    assert 2 <= len(lists) <= 3, "one shared list per FALLBACK_POLL_S, not one per task per poll"
    said = [r.getMessage() for r in caplog.records if "refused to watch sparkapplications" in r.getMessage()]
    assert len(said) == 1 and "namespace 'default'" in said[0]


def test_a_refused_get_fails_at_once_naming_verb_resource_and_namespace(k8s_api: KubeApiServer) -> None:  # noqa: F811
    create_jobs(k8s_api, ["denied"])
    k8s_api.inject_fault(status=403, verb="get", resource="sparkapplications", times=100)
    start = time.monotonic()
    results = asyncio.run(asyncio.wait_for(wait_all({"denied": trigger("denied", CONN_ID)}), 30))
    payload = results["denied"][0]
    assert payload["status"] == "failed"
    assert "refused to get sparkapplications in namespace 'default'" in payload["message"]
    assert time.monotonic() - start < 5.0
    assert k8s_api.count(verb="get", resource="sparkapplications") == 1, "a 403 is never retried"
