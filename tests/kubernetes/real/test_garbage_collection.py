"""The job's Secret goes with the job through the real kube-controller-manager's garbage collector.

The provider stores a task's secret values in ``<job>-secrets``, owned by the job (``ownerReferences``
with ``blockOwnerDeletion``, written under the documented worker Role, with the
``OwnerReferencesPermissionEnforcement`` admission plugin on). The provider deletes only the job; the
garbage collector removes the Secret (the first time it must discover the CRD's resource: up to 60 s).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.remote.jobs import KubernetesJobError, KubernetesJobs
from tests.conftest import TEST_DAGS
from tests.kubernetes.real import access
from tests.kubernetes.real.spark_run import (
    SECRET_VALUE,
    SECRET_VARIABLE,
    StatusWriter,
    run_spark,
    secret_name,
)

GC_WITHIN_S = 60.0
WORKER_ROLE = access.documented_roles()[access.ROLE_OF_USER["worker"]]


@pytest.fixture
def namespace(real_cluster: Any) -> Iterator[str]:
    name = access.new_namespace(real_cluster, "gc")
    yield name
    access.delete_namespace(real_cluster, name)


def _secret_gone(real_cluster: Any, namespace: str, name: str, within: float) -> bool:
    from kubernetes import client

    core = client.CoreV1Api(real_cluster.api_client("admin"))
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            core.read_namespaced_secret(name, namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return True
            raise
        time.sleep(0.5)
    return False


def test_the_garbage_collector_removes_the_secret_of_a_job_deleted_in_the_background(
        real_cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider's own calls under the worker Role write the owner reference; an admin deletes only the job."""
    from kubernetes import client

    access.bind(real_cluster, namespace, "worker", WORKER_ROLE)
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAL_GC", real_cluster.connection_json("worker", namespace))
    jobs = KubernetesJobs("k8s_real_gc", "airflow_provider_flyte.manifests.spark", namespace)
    body = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": "owner", "namespace": namespace},
            "spec": {"type": "Python", "mode": "cluster", "image": "x", "mainApplicationFile": "local:///m.py",
                     "sparkVersion": "3.5.0", "driver": {}, "executor": {}}}
    obj, created = jobs.create(body)
    assert created
    for name in ("owner-secrets", "unowned-secrets"):
        jobs.create_secret({"metadata": {"name": name, "namespace": namespace}, "stringData": {"k": "v"}})
    jobs.own_secret("owner-secrets", obj)  # raises if the Role cannot set blockOwnerDeletion
    custom = client.CustomObjectsApi(real_cluster.api_client("admin"))
    custom.delete_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2", namespace, "sparkapplications", "owner",
                                           propagation_policy="Background")
    started = time.monotonic()
    assert _secret_gone(real_cluster, namespace, "owner-secrets", GC_WITHIN_S), "the owned Secret outlived its job"
    print(f"garbage collected in {time.monotonic() - started:.1f} s")
    client.CoreV1Api(real_cluster.api_client("admin")).read_namespaced_secret("unowned-secrets", namespace)


def test_a_task_run_leaves_no_secret(real_cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch,
                                     tmp_path: Path) -> None:
    """The provider's runner under the worker Role: the job is deleted (foreground) and its Secret goes with it."""
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv(f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}", SECRET_VALUE)
    access.bind(real_cluster, namespace, "worker", WORKER_ROLE)
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAL_WORKER", real_cluster.connection_json("worker", namespace))
    with StatusWriter(real_cluster, namespace) as writer, pytest.raises(KubernetesJobError, match="set by the test"):
        run_spark("k8s_real_worker", namespace, "gc")
    assert secret_name("gc") in {s["metadata"]["name"] for s in writer.secrets_seen.values()}
    assert _secret_gone(real_cluster, namespace, secret_name("gc"), GC_WITHIN_S)
