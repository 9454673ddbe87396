"""``@env.task(service_account=...)`` / ``.override(service_account=...)`` on Kubernetes (issue 27), against the
simulator (tests/support/k8s): every pod of the task's job runs under the task's service account, over the
environment's, as ``TaskEnvironment(service_account=)`` does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.authoring.task_params import flyte_to_airflow
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import FlyteOperator, build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    import remote_tasks

    return remote_tasks


def test_the_tasks_service_account_names_every_pod_of_its_job(k8s: Any, remote_tasks: Any) -> None:
    base = TaskEnvironment(name="k8s", image="sim/venv:1", service_account="env-sa")
    _, env = flyte_to_airflow({"service_account": "task-sa"}, base, where="flyte_task", operator_class=FlyteOperator)
    config = Dask(workers=WorkerGroup(number_of_workers=1)).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id="sa", run_id="manual__1", project_root=TEST_DAGS),
                      config, env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5})
    since = k8s.server.store.resource_version
    with k8s.service_account("task-sa"):
        assert TaskRunner(spec, config, remote_tasks.dask_workers_and_square).run((2,), {}) == {"workers": 1,
                                                                                                  "square": 4}
    pods = [e.obj for e in k8s.server.store.events_after(since) if e.type == "ADDED" and e.res.plural == "pods"]
    assert len(pods) >= 3, [p["metadata"]["name"] for p in pods]  # scheduler, worker, job runner
    for pod in pods:
        assert pod["spec"].get("serviceAccountName") == "task-sa", pod["metadata"]["name"]
