"""``execution_timeout`` as the job's own deadline, enforced by the (simulated) operator.

- A task with an ``execution_timeout`` creates its RayJob / PyTorchJob with ``activeDeadlineSeconds``
  (RayJob ``spec``, PyTorchJob ``spec.runPolicy``) = the time left to the timeout + the margin; a
  DaskJob (whose CRD has no such field) gets none.
- Nobody watching (the task deferred and no triggerer ever came): KubeRay fails the RayJob with
  ``DeadlineExceeded`` once ``activeDeadlineSeconds`` passed and deletes its RayCluster.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.manifests.base import CLUSTER_DEADLINE_MARGIN_S, JobTarget
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    import remote_tasks

    return remote_tasks


def _config(engine: str) -> Any:
    if engine == "ray":
        from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

        return RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    if engine == "pytorch":
        from airflow_provider_flyte.plugins.pytorch import Elastic

        return Elastic(nnodes=1, nproc_per_node=1)
    from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

    return Dask(workers=WorkerGroup(number_of_workers=1))


PLURALS = {"ray": "rayjobs", "pytorch": "pytorchjobs", "dask": "daskjobs"}


def _deadline_of(engine: str, obj: dict[str, Any]) -> Any:
    spec = obj["spec"]
    return (spec.get("runPolicy") or {}).get("activeDeadlineSeconds") if engine == "pytorch" else \
        spec.get("activeDeadlineSeconds")


@pytest.mark.parametrize("engine", ["ray", "pytorch", "dask"])
def test_execution_timeout_becomes_the_jobs_own_deadline(k8s: Any, remote_tasks: Any, engine: str) -> None:
    from airflow.sdk.exceptions import TaskDeferred

    from airflow_provider_flyte import TaskEnvironment

    config = _config(engine).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id=f"deadline-{engine}", run_id="manual__1", project_root=TEST_DAGS),
                      config, TaskEnvironment(name="k8s", image="sim/venv:1"), k8s.conn_id)
    timeout_s = 600
    spec = spec.with_changes(options={"deferrable": True, "startup_timeout": 120, "poll_interval": 0.5,
                                      "deadline": time.time() + timeout_s})
    with pytest.raises(TaskDeferred) as deferred:
        TaskRunner(spec, config, remote_tasks.sleeps_then_stops_slowly).run((0.0,), {})
    try:
        (obj,) = [o for res, o in k8s.server.store.all_objects() if res.plural == PLURALS[engine]]
        found = _deadline_of(engine, obj)
        if engine == "dask":
            assert found is None and "activeDeadlineSeconds" not in str(obj["spec"]).split("pod", 1)[0]
        else:
            assert found is not None, obj["spec"]
            assert timeout_s + CLUSTER_DEADLINE_MARGIN_S - 5 <= found <= timeout_s + CLUSTER_DEADLINE_MARGIN_S, found
    finally:
        asyncio.run(deferred.value.trigger.on_kill())
        k8s.sim.wait_for(lambda: not k8s.sim.live_processes(), timeout=60, what="the job's pods stopped")


def test_kuberay_fails_a_rayjob_past_its_deadline_and_deletes_its_cluster(k8s: Any) -> None:
    """The manifest the provider builds, created with nobody watching it: the operator ends it by itself."""
    from airflow_provider_flyte.manifests import ray as ray_manifest

    target = JobTarget(name="deadline-ray", namespace="default", image="sim/venv:1", labels={"t": "deadline"},
                       command=["python", "-c", "import time; time.sleep(600)"], active_deadline_s=3)
    body = ray_manifest.build_manifest(_ray_config_shutting_down(), target)
    assert body["spec"]["activeDeadlineSeconds"] == 3
    custom = k8s.custom
    custom.create_namespaced_custom_object("ray.io", "v1", "default", "rayjobs", body)
    try:
        def state() -> dict[str, Any]:
            obj = custom.get_namespaced_custom_object("ray.io", "v1", "default", "rayjobs", "deadline-ray")
            return obj.get("status") or {}

        k8s.sim.wait_for(lambda: state().get("jobDeploymentStatus") == "Failed", timeout=120,
                         what="the RayJob failed past its deadline")
        status = state()
        assert status["reason"] == "DeadlineExceeded", status
        assert "activeDeadlineSeconds" in status["message"], status
        k8s.sim.wait_for(lambda: not [o for res, o in k8s.server.store.all_objects() if res.plural == "rayclusters"],
                         timeout=60, what="the RayCluster deleted")
    finally:
        custom.delete_namespaced_custom_object("ray.io", "v1", "default", "rayjobs", "deadline-ray")
        k8s.sim.wait_for(lambda: not k8s.sim.live_processes(), timeout=60, what="the job's pods stopped")


def _ray_config_shutting_down() -> Any:
    from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

    return RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)],
                        shutdown_after_job_finishes=True)
