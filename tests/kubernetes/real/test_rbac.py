"""Least privilege, proven on a real kube-apiserver: the Roles docs/kubernetes.md documents are enough, and each verb
in them is needed.

The worker's Role is bound to the token user ``worker``; a Spark task with a secret goes through the provider's
runner with that user's connection (list, create the Secret and the job, own the Secret, get, list pods, read the
log, delete; see :mod:`.spark_run`). Taking out any one verb makes the task fail, or its log say so, within 30 s
with Kubernetes' message naming the verb, the resource and the namespace. The triggerer's Role the same way,
through :class:`FlyteKubernetesJobTrigger` with the ``triggerer`` user's connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.remote.jobs import KubernetesJobError
from tests.conftest import TEST_DAGS
from tests.kubernetes.real import access
from tests.kubernetes.real.spark_run import (
    SECRET_VALUE,
    SECRET_VARIABLE,
    StatusWriter,
    run_spark,
    secret_name,
)

WORKER_ROLE = access.documented_roles()[access.ROLE_OF_USER["worker"]]
TRIGGERER_ROLE = access.documented_roles()[access.ROLE_OF_USER["triggerer"]]
#: Seconds within which a missing verb must be named.
NAMED_WITHIN_S = 30.0


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv(f"AIRFLOW_VAR_{SECRET_VARIABLE.upper()}", SECRET_VALUE)
    return tmp_path / "store"


@pytest.fixture
def namespace(real_cluster: Any) -> Iterator[str]:
    name = access.new_namespace(real_cluster, "rbac")
    yield name
    access.delete_namespace(real_cluster, name)  # the controller-manager removes what is left


def connect(real_cluster: Any, monkeypatch: pytest.MonkeyPatch, user: str, namespace: str) -> str:
    conn_id = f"k8s_real_{user}"
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", real_cluster.connection_json(user, namespace))
    return conn_id


def worker_cases() -> list[Any]:
    return [pytest.param(verb, resource, id=f"{verb}-{resource}") for verb, resource in access.grants(WORKER_ROLE)]


def test_the_documented_worker_role_is_enough(real_cluster: Any, namespace: str, store: Path,
                                              monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from kubernetes import client

    access.bind(real_cluster, namespace, "worker", WORKER_ROLE)
    conn_id = connect(real_cluster, monkeypatch, "worker", namespace)
    caplog.set_level(logging.INFO)
    with StatusWriter(real_cluster, namespace) as writer, pytest.raises(KubernetesJobError) as info:
        run_spark(conn_id, namespace, "enough")
    message = str(info.value)
    assert "FAILED: set by the test" in message, message  # the job ran its course: no call was refused
    assert "forbidden" not in message.lower() and "forbidden" not in caplog.text.lower(), caplog.text
    # the Secret was owned by the job (blockOwnerDeletion accepted under the Role), and held no value in the clear
    (seen,) = writer.secrets_seen.values()
    (owner,) = seen["metadata"]["ownerReferences"]
    assert owner["kind"] == "SparkApplication" and owner["blockOwnerDeletion"] is True
    assert seen["metadata"]["name"] == secret_name("enough")
    admin = client.CustomObjectsApi(real_cluster.api_client("admin"))
    deadline = time.monotonic() + 60  # deleted in the foreground: gone once the garbage collector removed the Secret
    while admin.list_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2", namespace,
                                              "sparkapplications")["items"]:
        assert time.monotonic() < deadline, "the job was not deleted"
        time.sleep(0.5)


def test_the_worker_role_is_checked_for_every_verb_the_page_lists() -> None:
    """The parametrized cases below follow the page; this one fails if the page lost a call the provider makes."""
    assert set(access.grants(WORKER_ROLE)) == {
        ("create", "sparkapplications"), ("get", "sparkapplications"), ("list", "sparkapplications"),
        ("delete", "sparkapplications"), ("patch", "sparkapplications"), ("update", "sparkapplications/finalizers"),
        ("list", "pods"), ("get", "pods/log"),
        ("create", "secrets"), ("update", "secrets"), ("patch", "secrets"), ("delete", "secrets"),
    }
    assert set(access.grants(TRIGGERER_ROLE)) == {
        ("get", "sparkapplications"), ("list", "sparkapplications"), ("watch", "sparkapplications"),
        ("delete", "sparkapplications"), ("list", "pods"), ("watch", "pods")}


@pytest.mark.parametrize(("verb", "resource"), worker_cases())
def test_each_worker_verb_missing_is_named_at_once(verb: str, resource: str, real_cluster: Any, namespace: str,
                                                   store: Path, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    from kubernetes import client

    access.bind(real_cluster, namespace, "worker", access.without(WORKER_ROLE, verb, resource))
    conn_id = connect(real_cluster, monkeypatch, "worker", namespace)
    task_id = f"no-{verb}-{resource.replace('/', '-')}"
    options: dict[str, Any] = {}
    if (verb, resource) == ("patch", "sparkapplications"):
        options["keep_failed_s"] = 600  # the only call that patches the job: the expiry of a kept failed job
    if (verb, resource) == ("update", "secrets"):  # the Secret exists already (a create retried after a lost answer)
        client.CoreV1Api(real_cluster.api_client("admin")).create_namespaced_secret(
            namespace, {"metadata": {"name": secret_name(task_id)}, "stringData": {"x": "earlier"}})
    caplog.set_level(logging.INFO)
    started = time.monotonic()
    error = ""
    with StatusWriter(real_cluster, namespace):
        try:
            run_spark(conn_id, namespace, task_id, **options)
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            error = f"{type(exc).__name__}: {exc}"
    took = time.monotonic() - started
    assert took < NAMED_WITHIN_S, f"{took:.1f} s"
    printed = capfd.readouterr()  # the task's hook logs through Airflow's task logger, which does not propagate
    said = "\n".join((error, caplog.text, printed.out, printed.err))
    # Kubernetes' RBAC message, or (where owner references are enforced) the provider's naming of what it checks
    named = (f'cannot {verb} resource "{resource}"' in said and f'in the namespace "{namespace}"' in said) or (
        resource in ("sparkapplications/finalizers", "secrets") and verb in ("update", "patch", "delete")
        and "Cannot make SparkApplication" in error and f"{verb} on" in error and resource.split("/")[0] in error
        and namespace in error)
    assert named, f"the missing {verb} on {resource} in {namespace} is not named:\n{said[-4000:]}"
    assert "Retrying" not in said and "; retrying" not in said, "a 403 was retried"
    if (verb, resource) != ("get", "pods/log"):
        assert error, "a missing verb fails the task"
    assert SECRET_VALUE not in said


# -- the triggerer ------------------------------------------------------------------------------------------------
def _job(real_cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    from kubernetes import client

    body = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": name, "namespace": namespace, "labels": {"job": name}},
            "spec": {"type": "Python", "mode": "cluster", "image": "x", "mainApplicationFile": "local:///m.py",
                     "sparkVersion": "3.5.0", "driver": {}, "executor": {}}}
    return client.CustomObjectsApi(real_cluster.api_client("admin")).create_namespaced_custom_object(  # type: ignore[no-any-return]
        "sparkoperator.k8s.io", "v1beta2", namespace, "sparkapplications", body)


def _trigger(conn_id: str, namespace: str, name: str) -> Any:
    from airflow_provider_flyte.remote.jobs import JobRef
    from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger

    ref = JobRef(conn_id=conn_id, namespace=namespace, name=name, manifest_module="airflow_provider_flyte.manifests.spark",
                 spec_uri="file:///nonexistent/spec.json", selector=f"job={name}")
    return FlyteKubernetesJobTrigger(ref.to_dict(), poll_interval=0.5, startup_timeout=60, started_at=time.time())


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("no event")


def _complete(real_cluster: Any, namespace: str, name: str) -> None:
    from kubernetes import client

    client.CustomObjectsApi(real_cluster.api_client("admin")).patch_namespaced_custom_object_status(
        "sparkoperator.k8s.io", "v1beta2", namespace, "sparkapplications", name,
        {"status": {"driverInfo": {}, "applicationState": {"state": "COMPLETED"}}})


def test_the_documented_triggerer_role_is_enough(real_cluster: Any, namespace: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    access.bind(real_cluster, namespace, "triggerer", TRIGGERER_ROLE)
    conn_id = connect(real_cluster, monkeypatch, "triggerer", namespace)
    _job(real_cluster, namespace, "waited")
    _complete(real_cluster, namespace, "waited")
    event = asyncio.run(asyncio.wait_for(_first_event(_trigger(conn_id, namespace, "waited")), NAMED_WITHIN_S))
    assert event["status"] == "succeeded", event
    _job(real_cluster, namespace, "killed")
    asyncio.run(asyncio.wait_for(_trigger(conn_id, namespace, "killed").on_kill(), NAMED_WITHIN_S))


@pytest.mark.parametrize(("verb", "resource"), [pytest.param(v, r, id=f"{v}-{r}") for v, r in access.grants(TRIGGERER_ROLE)])
def test_each_triggerer_verb_missing_is_named_at_once(verb: str, resource: str, real_cluster: Any, namespace: str,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    access.bind(real_cluster, namespace, "triggerer", access.without(TRIGGERER_ROLE, verb, resource))
    conn_id = connect(real_cluster, monkeypatch, "triggerer", namespace)
    _job(real_cluster, namespace, "job")
    trigger = _trigger(conn_id, namespace, "job")
    started = time.monotonic()
    if verb == "watch":  # refused watch: the shared watch says so once and polls instead (no failure)
        caplog.set_level(logging.INFO)
        with pytest.raises(TimeoutError):
            asyncio.run(asyncio.wait_for(_first_event(trigger), 10))
        said = caplog.text
    elif verb == "delete":
        with pytest.raises(Exception) as info:
            asyncio.run(asyncio.wait_for(trigger.on_kill(), NAMED_WITHIN_S))
        said = str(info.value)
    else:
        event = asyncio.run(asyncio.wait_for(_first_event(trigger), NAMED_WITHIN_S))
        assert event["status"] == "failed", event
        said = event["message"]
    assert time.monotonic() - started < NAMED_WITHIN_S + 1
    assert f'cannot {verb} resource \\"{resource}\\"' in said or f'cannot {verb} resource "{resource}"' in said, said
    assert namespace in said, said
