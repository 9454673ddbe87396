"""Secrets, service account and interruptible nodes on Kubernetes, against the simulator (tests/support/k8s).

The task's secrets are resolved on the worker (Airflow Variables), stored in one Kubernetes Secret
owned by the job, and read by every pod through ``secretKeyRef``: the task, its file mount and a
Dask worker in another pod see the value, while the job object, the staged spec and the task log
never hold it. The pods run under the configured service account; interruptible pods carry the
configured tolerations and node selector.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner
from airflow_provider_flyte.secrets import Secret
from tests.conftest import TEST_DAGS

TOKEN = "tok-5f1d9c2e-planted"
PASSWORD = "pw-0b7e44aa-planted"
TOLERATION = {"key": "spot", "operator": "Exists", "effect": "NoSchedule"}


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("AIRFLOW_VAR_API_TOKEN", TOKEN)
    monkeypatch.setenv("AIRFLOW_VAR_DB_PASSWORD", PASSWORD)
    import remote_tasks

    return remote_tasks


def _events(k8s: Any, since: int, plural: str, kind: str) -> list[dict[str, Any]]:
    """Objects of ``plural`` as they were at each ``kind`` event after resource version ``since``."""
    return [e.obj for e in k8s.server.store.events_after(since) if e.type == kind and e.res.plural == plural]


def test_secrets_reach_every_pod_through_a_secret_owned_by_the_job(k8s: Any, remote_tasks: Any, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_SERVICE_ACCOUNT", "flyte-jobs")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_INTERRUPTIBLE_TOLERATIONS", json.dumps([TOLERATION]))
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_INTERRUPTIBLE_NODE_SELECTOR", json.dumps({"pool": "spot"}))
    # the simulated node is a spot node (its scheduler matches nodeSelector against the node's labels)
    monkeypatch.setitem(k8s.sim.kubelet.node_labels, "pool", "spot")
    env = TaskEnvironment(name="k8s", image="sim/venv:1", interruptible=True,
                          secrets=[Secret(key="api_token"), Secret(key="db_password", mount="/etc/flyte/secrets")])
    config = Dask(workers=WorkerGroup(number_of_workers=1)).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id="secrets", run_id="manual__1", project_root=TEST_DAGS),
                      config, env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5})
    since = k8s.server.store.resource_version
    with caplog.at_level(logging.INFO), k8s.service_account("flyte-jobs"):
        result = TaskRunner(spec, config, remote_tasks.dask_secret_digests).run((), {})
    assert result == {"env": digest(TOKEN), "file": digest(PASSWORD), "worker": digest(TOKEN)}

    (job,) = _events(k8s, since, "daskjobs", "ADDED")
    # (a real API server also adds the ServiceAccount's token Secret)
    (secret,) = [s for s in _events(k8s, since, "secrets", "ADDED")
                 if s.get("type") != "kubernetes.io/service-account-token"]
    assert secret["metadata"]["name"] == f"{job['metadata']['name']}-secrets"
    assert k8s.server.count(verb="patch", resource="secrets") == 1  # the job became its owner
    owners = [s for s in _events(k8s, since, "secrets", "MODIFIED")
              if s["metadata"]["name"] == secret["metadata"]["name"]]
    assert owners and owners[-1]["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
    # the value is only in the Secret: not in the job, the staged spec or the task's log
    text = json.dumps(job)
    assert TOKEN not in text and PASSWORD not in text
    staged = [p.read_text(errors="replace") for p in (tmp_path / "store").rglob("*.json")]
    assert staged == [] or all(TOKEN not in s and PASSWORD not in s for s in staged)
    assert TOKEN not in caplog.text and PASSWORD not in caplog.text
    # every pod the operator made: the service account; interruptible tolerations and node selector
    pods = _events(k8s, since, "pods", "ADDED")
    assert len(pods) >= 3, [p["metadata"]["name"] for p in pods]  # scheduler, worker, job runner
    for pod in pods:
        assert pod["spec"].get("serviceAccountName") == "flyte-jobs", pod["metadata"]["name"]
        assert TOLERATION in (pod["spec"].get("tolerations") or []), pod["metadata"]["name"]
        assert pod["spec"].get("nodeSelector", {}).get("pool") == "spot", pod["metadata"]["name"]
    # deleted with the job (the k8s fixture fails the test if the Secret were left)
    assert k8s.server.count(verb="delete", resource="daskjobs") >= 1


def test_a_task_without_secrets_creates_no_secret_and_keeps_the_default_service_account(
        k8s: Any, remote_tasks: Any) -> None:
    env = TaskEnvironment(name="k8s", image="sim/venv:1")
    config = Dask(workers=WorkerGroup(number_of_workers=1)).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id="plain", run_id="manual__1", project_root=TEST_DAGS),
                      config, env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5})
    since = k8s.server.store.resource_version
    assert TaskRunner(spec, config, remote_tasks.dask_workers_and_square).run((2,), {}) == {"workers": 1,
                                                                                              "square": 4}
    assert _events(k8s, since, "secrets", "ADDED") == []
    for pod in _events(k8s, since, "pods", "ADDED"):
        assert "tolerations" not in pod["spec"] or TOLERATION not in pod["spec"]["tolerations"]
        assert pod["spec"].get("serviceAccountName") in (None, "default")
