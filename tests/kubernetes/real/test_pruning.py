"""Pruning on a real kube-apiserver, and the provider's own check of the fields it sends.

A real API server silently drops a custom object's field its CRD does not declare (the HTTP stand-in refuses
it instead). Shown here: (1) every field of the provider's four manifests survives the real server (nothing
of ours is dropped) and the provider's check names none; (2) typos in a SparkApplication are dropped by the
real server without an error, exactly the fields the provider's check names; (3) through the runner, a typo in
a user's pod template is refused by the provider before anything is created.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.base import JobTarget
from airflow_provider_flyte.manifests.known_fields import check_known_fields, unknown_fields
from airflow_provider_flyte.resources import Resources
from tests.conftest import TEST_DAGS
from tests.kubernetes.real import access
from tests.kubernetes.real.spark_run import task_info


@pytest.fixture
def namespace(real_cluster: Any) -> Iterator[str]:
    name = access.new_namespace(real_cluster, "prune")
    yield name
    access.delete_namespace(real_cluster, name)


def _manifests(namespace: str) -> dict[str, dict[str, Any]]:
    from airflow_provider_flyte.manifests import dask, pytorch, ray, spark
    from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
    from airflow_provider_flyte.plugins.pytorch import Elastic
    from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
    from airflow_provider_flyte.plugins.spark import Spark

    template = {"metadata": {"labels": {"team": "a"}},
                "spec": {"containers": [{"name": "primary", "env": [{"name": "A", "value": "1"}]},
                                        {"name": "sidecar", "image": "busybox:1", "args": ["sleep", "1"]}],
                         "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]}}
    target = JobTarget.for_task(task_info("prune"), image="img:1", command=["python", "-m", "x"], args=["a"],
                                main_file="local:///app/main.py", namespace=namespace, env={"E": "1"},
                                resources=Resources(cpu=("1", "2"), memory=("1Gi", "2Gi")))
    return {
        "SparkApplication": spark.build_manifest(Spark(
            spark_conf={"spark.executor.instances": "2", "spark.driver.cores": "1"}, hadoop_conf={"fs.x": "y"},
            executor_path="/usr/bin/python3", driver_pod=template, executor_pod=template).validated(), target),
        "RayJob": ray.build_manifest(RayJobConfig(
            head_node_config=HeadNodeConfig(pod_template=template),
            worker_node_config=[WorkerNodeConfig(group_name="g", replicas=2, pod_template=template)]), target),
        "DaskJob": dask.build_manifest(Dask(workers=WorkerGroup(number_of_workers=2)).validated(), target,
                                       pod_template=template),
        "PyTorchJob": pytorch.build_manifest(Elastic(nnodes=2, nproc_per_node=1), target, pod_template=template),
    }


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _leaves(item, f"{path}.{key}").items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in _leaves(item, f"{path}[{i}]").items()}
    return {path: value}


def _create_and_read(real_cluster: Any, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    from kubernetes import client

    group, version = body["apiVersion"].split("/")
    plural = {"SparkApplication": "sparkapplications", "RayJob": "rayjobs", "DaskJob": "daskjobs",
              "PyTorchJob": "pytorchjobs"}[body["kind"]]
    custom = client.CustomObjectsApi(real_cluster.api_client("admin"))
    custom.create_namespaced_custom_object(group, version, namespace, plural, body)
    return custom.get_namespaced_custom_object(  # type: ignore[no-any-return]
        group, version, namespace, plural, body["metadata"]["name"])


@pytest.mark.parametrize("kind", ["SparkApplication", "RayJob", "DaskJob", "PyTorchJob"])
def test_nothing_the_provider_sends_is_dropped_by_the_real_server(kind: str, real_cluster: Any, namespace: str) -> None:
    body = _manifests(namespace)[kind]
    assert unknown_fields(body) == []
    stored = _create_and_read(real_cluster, namespace, copy.deepcopy(body))
    sent, kept = _leaves(body["spec"]), _leaves(stored["spec"])
    dropped = {path: value for path, value in sent.items() if path not in kept}
    assert not dropped, f"the real API server dropped fields of the provider's {kind}: {dropped}"


def test_the_real_server_drops_unknown_spark_fields_silently_and_the_check_names_exactly_them(
        real_cluster: Any, namespace: str) -> None:
    body = _manifests(namespace)["SparkApplication"]
    body["spec"]["timeToLiveSecond"] = 60  # typos of timeToLiveSeconds, coreLimit, volumes[].emptyDir
    body["spec"]["driver"]["coreLimitt"] = "2"
    body["spec"]["volumes"] = [{"name": "scratch", "emptyDirr": {}}]
    named = sorted(path for path, _ in unknown_fields(body))
    assert named == ["spec.driver.coreLimitt", "spec.timeToLiveSecond", "spec.volumes[0].emptyDirr"]
    with pytest.raises(FlyteConfigError, match=r"SparkApplication field spec\.driver\.coreLimitt: .*would drop it"):
        check_known_fields(body)
    stored = _create_and_read(real_cluster, namespace, copy.deepcopy(body))  # no error: created
    sent, kept = _leaves(body["spec"]), _leaves(stored["spec"])
    dropped = sorted(path for path in sent if path not in kept)
    assert dropped == [".driver.coreLimitt", ".timeToLiveSecond", ".volumes[0].emptyDirr"]
    assert stored["spec"]["volumes"] == [{"name": "scratch"}]


def test_the_provider_refuses_a_pod_template_typo_before_creating_anything(
        real_cluster: Any, namespace: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kubernetes import client

    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.operators.base import build_spec
    from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
    from airflow_provider_flyte.runtime.runner import TaskRunner

    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("AIRFLOW_CONN_K8S_REAL_ADMIN", real_cluster.connection_json("admin", namespace))
    import remote_tasks

    typo = {"spec": {"containers": [{"name": "sidecar", "image": "busybox:1", "imagePullPolicyy": "Always"}]}}
    config = RayJobConfig(head_node_config=HeadNodeConfig(pod_template=typo),
                          worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    env = TaskEnvironment(name="k8s", image="sim/venv:1")
    spec = build_spec(task_info("typo"), config.validated(), env, "k8s_real_admin")
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 5, "poll_interval": 0.5,
                                      "namespace": namespace})
    with pytest.raises(FlyteConfigError) as info:
        TaskRunner(spec, config.validated(), remote_tasks.ray_squares).run((3,), {})
    assert "RayJob field spec.rayClusterSpec.headGroupSpec.template.spec.containers[" in str(info.value)
    assert "imagePullPolicyy" in str(info.value) and "would drop it" in str(info.value)
    custom = client.CustomObjectsApi(real_cluster.api_client("admin"))
    assert custom.list_namespaced_custom_object("ray.io", "v1", namespace, "rayjobs")["items"] == []
    # nothing staged for the job is left in the store (the code bundle is shared by runs and stays)
    assert [p.name for p in (tmp_path / "store").rglob("*") if p.is_file() and "bundle" not in str(p)] == []
