"""The trigger watches one object, by name *and* ``uid``: a same-named object with another uid is not its job.

The task defers (its trigger holds the created object's ``uid``); the object is then deleted and
another one created with the same name, labels and annotations (apache/airflow#71743). The trigger
reports the job deleted instead of waiting on, and taking the outcome of, the other object; finishing or
killing the task then deletes nothing (the uid is a precondition of every deletion).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS

GROUP, VERSION, PLURAL = "kubernetes.dask.org", "v1", "daskjobs"


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    import remote_tasks

    return remote_tasks


def _objects(k8s: Any) -> list[dict[str, Any]]:
    return [obj for res, obj in k8s.server.store.all_objects() if res.plural == PLURAL]


def test_the_trigger_does_not_adopt_a_same_named_object_with_another_uid(k8s: Any, remote_tasks: Any) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_flyte import TaskEnvironment

    config = Dask(workers=WorkerGroup(number_of_workers=1)).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id="uid-trigger", run_id="manual__1", project_root=TEST_DAGS),
                      config, TaskEnvironment(name="k8s", image="sim/venv:1"), k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": True, "startup_timeout": 120, "poll_interval": 0.5})
    with pytest.raises(TaskDeferred) as deferred:
        TaskRunner(spec, config, remote_tasks.sleeps_then_stops_slowly).run((0.0,), {})
    trigger = deferred.value.trigger
    (job,) = _objects(k8s)
    meta = job["metadata"]
    k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, meta["name"])
    k8s.sim.wait_for(lambda: not _objects(k8s), timeout=30, what="the first DaskJob gone")
    other = k8s.custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, {
        "apiVersion": job["apiVersion"], "kind": job["kind"], "spec": job["spec"],
        "metadata": {"name": meta["name"], "labels": meta.get("labels") or {},
                     "annotations": meta.get("annotations") or {}}})
    try:
        async def first_event() -> Any:
            async for event in trigger.run():
                return event.payload
            return None

        payload = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
        assert payload["status"] == "failed", payload
        assert "was deleted while the task waited" in payload["message"], payload
        (left,) = _objects(k8s)
        assert left["metadata"]["uid"] == other["metadata"]["uid"], "the other object was touched"
        # what the task does next (execute_complete's finish, or a kill) leaves the other object alone too:
        # its deletion carries the uid as a precondition, and the other object's log is not read as the task's
        from airflow_provider_flyte.remote import watch
        from airflow_provider_flyte.remote.jobs import JobRef, KubernetesJobError

        with pytest.raises(KubernetesJobError, match="deleted while the task waited"):
            watch.finish(JobRef.from_dict(payload["job"]), payload)
        asyncio.run(trigger.on_kill())
        (left,) = _objects(k8s)
        assert left["metadata"]["uid"] == other["metadata"]["uid"] and not left["metadata"].get("deletionTimestamp")
    finally:
        k8s.custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, meta["name"])
        k8s.sim.wait_for(lambda: not _objects(k8s) and not k8s.sim.live_processes(), timeout=60,
                         what="the other object and its pods gone")
