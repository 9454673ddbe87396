"""remote/shared_watch + remote/waiting: many deferred tasks in one triggerer share one watch of their kind.

Against the simulator's API server (tests/support/k8s/server.py); the request log is the measure.
"""

from __future__ import annotations

import asyncio
import threading
import time

from tests.support.k8s.fixtures import CONN_ID, k8s_api  # noqa: F401
from tests.support.k8s.server import KubeApiServer
from tests.support.k8s.waiters import create_jobs, set_state, trigger, wait_all, waiting_requests

N = 20
RUN_S = 40.0  # each task GETs its job once when it starts waiting: 20 GETs + 2 lists + 2 watches


def _complete_later(server: KubeApiServer, names: list[str], after: float, done_at: dict[str, float]) -> threading.Timer:
    def complete() -> None:
        for name in names:
            set_state(server, name, "COMPLETED")
            done_at[name] = time.time()

    timer = threading.Timer(after, complete)
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
    # the watches went with their last subscriber
    assert all(r.verb != "watch" or r.status == 200 for r in k8s_api.request_log())


def test_a_410_gone_on_the_watch_relists_and_misses_no_completion(k8s_api: KubeApiServer) -> None:  # noqa: F811
    names = ["gone-a", "gone-b"]
    create_jobs(k8s_api, names)
    k8s_api.inject_fault(status=410, verb="watch", resource="sparkapplications", times=1)
    done_at: dict[str, float] = {}
    timer = _complete_later(k8s_api, names, 3.0, done_at)
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
