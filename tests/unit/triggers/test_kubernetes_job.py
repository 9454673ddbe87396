"""``FlyteKubernetesJobTrigger``: its serialized form (the triggerer's table keeps it) and its API error handling."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from typing import Any

from airflow_provider_flyte.remote.jobs import JobRef
from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger

JOB = JobRef(conn_id="k8s", namespace="team", name="flyte-job-1", manifest_module="airflow_provider_flyte.manifests.spark",
             spec_uri="file:///tmp/staged/spec.json", selector="app=flyte").to_dict()


class _ApiError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


class _Hook:
    @asynccontextmanager
    async def get_conn(self) -> Any:
        yield object()


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


def test_a_refused_read_ends_the_trigger_with_one_failed_event(monkeypatch) -> None:
    trigger = FlyteKubernetesJobTrigger(JOB, poll_interval=0.001, startup_timeout=60, started_at=0)
    looks = []

    async def look(api_client: Any) -> Any:
        looks.append(api_client)
        raise _ApiError(403)

    monkeypatch.setattr(trigger, "_hook", lambda: _Hook())
    monkeypatch.setattr(trigger, "_look", look)
    events = _events(trigger)
    assert len(events) == 1 and len(looks) == 1
    payload = events[0].payload
    assert payload["status"] == "failed"
    assert payload["job"] == JOB
    assert "cannot read" in payload["message"] and JobRef.from_dict(JOB).describe() in payload["message"]
    assert "HTTP 403" in payload["message"]


def test_transient_api_answers_are_retried_before_failing(monkeypatch) -> None:
    trigger = FlyteKubernetesJobTrigger(JOB, poll_interval=0.0001, startup_timeout=60, started_at=0)
    answers = [503, 429, 500, 404 + 1]  # three transient answers, then a final one (405)
    seen = []

    async def look(api_client: Any) -> Any:
        status = answers[len(seen)]
        seen.append(status)
        raise _ApiError(status)

    monkeypatch.setattr(trigger, "_hook", lambda: _Hook())
    monkeypatch.setattr(trigger, "_look", look)
    events = _events(trigger)
    assert seen == [503, 429, 500, 405]
    assert [e.payload["status"] for e in events] == ["failed"]
    assert "HTTP 405" in events[0].payload["message"]
