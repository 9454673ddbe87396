"""The engine-independent manifest pieces: names, labels, resources and pod templates."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from kubernetes.client import V1Container, V1EnvVar, V1PodSpec, V1PodTemplateSpec, V1Toleration

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.base import MANAGED_BY, NAME_MAX, JobTarget, k8s_resources, pod_template
from airflow_provider_flyte.resources import Resources
from tests.support import crds

DNS_1123 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
SHARED_CRDS = Path(__file__).resolve().parents[4] / "shared" / "k8s-crds"


def _task(**kw) -> TaskInfo:
    base = {"dag_id": "Nightly_ETL.v2", "task_id": "group.train_model", "run_id": "manual__2026-11-26T10:00:00+00:00"}
    return TaskInfo(**{**base, **kw})


def _target(**kw) -> JobTarget:
    return JobTarget.for_task(_task(**kw), image="repo/img:1", command=["python", "-m", "runner"])


@pytest.mark.parametrize("dag_id", ["Nightly_ETL.v2", "9starts_with_digit", "x" * 250, "ünïcode dag"])
def test_job_names_are_dns_1123_short_and_unique_per_try_and_map_index(dag_id):
    names = {
        _target(dag_id=dag_id).name,
        _target(dag_id=dag_id, try_number=2).name,
        _target(dag_id=dag_id, map_index=0).name,
        _target(dag_id=dag_id, map_index=1).name,
        _target(dag_id=dag_id, run_id="scheduled__2026-11-27").name,
    }
    assert len(names) == 5
    for name in names:
        assert DNS_1123.match(name) and len(name) <= NAME_MAX, name
    assert _target(dag_id=dag_id).name == _target(dag_id=dag_id).name  # stable: a retry of the same try reattaches


def test_labels_follow_the_kubernetes_provider_and_are_valid_label_values():
    labels = _target(map_index=4, try_number=3).labels
    assert set(labels) == {"dag_id", "task_id", "run_id", "try_number", "map_index", *MANAGED_BY}
    assert (labels["dag_id"], labels["task_id"], labels["try_number"], labels["map_index"]) == (
        "Nightly_ETL.v2", "group.train_model", "3", "4")
    for value in labels.values():
        assert LABEL_VALUE.match(value) and len(value) <= 63, value
    assert "map_index" not in _target().labels


def test_a_job_without_an_image_is_refused_naming_the_field():
    with pytest.raises(FlyteConfigError, match=r"^TaskEnvironment\.image: .*Fix: set image="):
        JobTarget.for_task(_task(), image=None, command=["python"])


def test_resources_become_container_quantities():
    assert k8s_resources(Resources(cpu=("1", "2"), memory="4Gi", gpu=1, disk="10Gi")) == {
        "requests": {"cpu": "1", "memory": "4Gi", "ephemeral-storage": "10Gi"},
        "limits": {"cpu": "2", "nvidia.com/gpu": "1"},
    }
    assert k8s_resources(None) == {} and k8s_resources(Resources()) == {}
    # Resources reads units case-insensitively; Kubernetes does not ("500m" would be milli-bytes).
    assert k8s_resources(Resources(memory=("500m", "4gb"), disk="1TiB")) == {
        "requests": {"memory": "500M", "ephemeral-storage": "1Ti"}, "limits": {"memory": "4G"}}


@pytest.mark.parametrize("form", ["dict", "model", "bare_pod_spec"])
def test_the_users_pod_template_is_the_base_and_is_never_dropped(form):
    user = {
        "metadata": {"labels": {"team": "ml"}},
        "spec": {
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "gpu", "operator": "Exists"}],
            "containers": [{"name": "main", "env": [{"name": "MODE", "value": "user"}]}],
        },
    }
    if form == "model":
        user = V1PodTemplateSpec(spec=V1PodSpec(
            node_selector={"pool": "gpu"}, tolerations=[V1Toleration(key="gpu", operator="Exists")],
            containers=[V1Container(name="main", env=[V1EnvVar(name="MODE", value="user")])]))
    elif form == "bare_pod_spec":
        user = user["spec"]
    out = pod_template(user, "Spark.driver_pod", container_name="main", image="img:2", command=["python"],
                       args=["-x"], env={"MODE": "ours", "EXTRA": "1"}, resources=Resources(cpu="2"))
    spec = out["spec"]
    assert spec["nodeSelector"] == {"pool": "gpu"}
    assert spec["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    (container,) = spec["containers"]
    assert container["image"] == "img:2" and container["command"] == ["python"] and container["args"] == ["-x"]
    assert container["env"] == [{"name": "MODE", "value": "user"}, {"name": "EXTRA", "value": "1"}]
    assert container["resources"] == {"requests": {"cpu": "2"}}


def test_a_container_the_user_configured_keeps_its_image_and_command():
    user = {"spec": {"containers": [{"name": "main", "image": "theirs:1", "command": ["bash"]}]}}
    (container,) = pod_template(user, "f", container_name="main", image="ours:1", command=["python"])["spec"]["containers"]
    assert (container["image"], container["command"]) == ("theirs:1", ["bash"])


def test_something_that_is_not_a_pod_template_is_refused_naming_the_field():
    with pytest.raises(FlyteConfigError, match=r"^HeadNodeConfig\.pod_template: .*not a pod template"):
        pod_template("pod.yaml", "HeadNodeConfig.pod_template", container_name="ray-head")


def test_the_vendored_crds_are_the_upstream_files():
    """tests/support/k8s_crds holds gzipped copies of ../shared/k8s-crds: same bytes (where that folder exists)."""
    for kind, name in crds.FILES.items():
        data = crds.crd_bytes(kind)
        assert data.startswith(b"---") or b"CustomResourceDefinition" in data[:2000], kind
        if SHARED_CRDS.is_dir():
            assert hashlib.sha256(data).digest() == hashlib.sha256((SHARED_CRDS / name).read_bytes()).digest(), name


@pytest.mark.parametrize("name", ["primary", None])
def test_flytes_primary_container_becomes_the_engines_container_and_sidecars_stay(name):
    user = {"spec": {"containers": [{"name": "sidecar", "image": "proxy:1"}, {"name": name, "env": [{"name": "A", "value": "1"}]}]}}
    containers = pod_template(user, "f", container_name="ray-head", image="img:1")["spec"]["containers"]
    assert [c["name"] for c in containers] == ["sidecar", "ray-head"]
    assert containers[1]["image"] == "img:1" and containers[1]["env"] == [{"name": "A", "value": "1"}]
    assert containers[0] == {"name": "sidecar", "image": "proxy:1"}


def test_every_registered_engine_has_a_manifest_module_with_the_contract():
    import importlib

    from airflow_provider_flyte import registry

    for entry in registry.entries():
        assert entry.manifest_path, f"{entry.config_name} has no manifest module"
        module = importlib.import_module(entry.manifest_path)
        for name in ("API_VERSION", "KIND", "PLURAL", "build_manifest", "job_state"):
            assert hasattr(module, name), f"{entry.manifest_path} lacks {name}"
        assert module.KIND in crds.FILES, module.KIND
        assert crds.schema(module.KIND, module.API_VERSION)["type"] == "object"


def test_the_clusters_deadline_is_the_time_left_plus_the_margin_never_below_one_second() -> None:
    from airflow_provider_flyte.manifests.base import CLUSTER_DEADLINE_MARGIN_S, cluster_deadline_s

    assert cluster_deadline_s(None, 1000.0) is None
    assert cluster_deadline_s(1600.0, 1000.0) == 600 + CLUSTER_DEADLINE_MARGIN_S
    assert cluster_deadline_s(1600.2, 1000.0) == 601 + CLUSTER_DEADLINE_MARGIN_S  # rounded up, never short
    assert cluster_deadline_s(900.0, 1000.0) == 1 + CLUSTER_DEADLINE_MARGIN_S  # already past: Airflow ends it
