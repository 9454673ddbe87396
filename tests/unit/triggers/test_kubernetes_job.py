"""``FlyteKubernetesJobTrigger``: its serialized form (the triggerer's table keeps it) and its API error handling
(against the simulator's API server)."""

from __future__ import annotations

import asyncio
from typing import Any

from airflow_provider_flyte.remote.jobs import JobRef
from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger
from tests.support.k8s.fixtures import CONN_ID, k8s_api  # noqa: F401
from tests.support.k8s.server import KubeApiServer
from tests.support.k8s.waiters import create_jobs, set_state, trigger

JOB = JobRef(conn_id="k8s", namespace="team", name="flyte-job-1", manifest_module="airflow_provider_flyte.manifests.spark",
             spec_uri="file:///tmp/staged/spec.json", selector="app=flyte").to_dict()


def _events(trigger: FlyteKubernetesJobTrigger) -> list[Any]:
    async def collect() -> list[Any]:
        return [event async for event in trigger.run()]

    return asyncio.run(collect())


def test_the_serialized_path_and_kwargs_rebuild_the_same_trigger() -> None:
    trigger = FlyteKubernetesJobTrigger(JOB, poll_interval=2, startup_timeout="60", started_at=1000, deadline=None)
    path, kwargs = trigger.serialize()
    assert path == "airflow_provider_flyte.triggers.kubernetes_job.FlyteKubernetesJobTrigger"
    assert kwargs == {"job": JOB, "poll_interval": 2.0, "startup_timeout": 60.0, "started_at": 1000.0, "deadline": None}
    assert all(type(kwargs[k]) is float for k in ("poll_interval", "startup_timeout", "started_at"))
    again = FlyteKubernetesJobTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert again.ref == JobRef.from_dict(JOB)
    assert FlyteKubernetesJobTrigger(JOB, poll_interval=1, startup_timeout=1, started_at=0, deadline=5).deadline == 5.0


def test_a_refused_list_ends_the_trigger_with_one_failed_event(k8s_api: KubeApiServer) -> None:  # noqa: F811
    create_jobs(k8s_api, ["listed"])
    k8s_api.inject_fault(status=403, verb="list", resource="sparkapplications", times=100)
    events = _events(trigger("listed", CONN_ID, poll_interval=0.01, selector=False))
    assert len(events) == 1 and k8s_api.count(verb="list", resource="sparkapplications") == 1
    payload = events[0].payload
    assert payload["status"] == "failed"
    assert "cannot read SparkApplication default/listed" in payload["message"]
    assert "refused to list sparkapplications in namespace 'default'" in payload["message"]
    assert "HTTP 403" in payload["message"]


def test_transient_api_answers_are_retried_before_failing(k8s_api: KubeApiServer) -> None:  # noqa: F811
    create_jobs(k8s_api, ["flaky"])
    set_state(k8s_api, "flaky", "COMPLETED")
    for status in (503, 429, 500):
        k8s_api.inject_fault(status=status, verb="get", resource="sparkapplications", times=1)
    events = _events(trigger("flaky", CONN_ID, poll_interval=0.01, selector=False))
    assert [r.status for r in k8s_api.request_log(verb="get")] == [503, 429, 500, 200]
    assert [e.payload["status"] for e in events] == ["succeeded"]
