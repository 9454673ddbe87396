"""The real control plane the Kubernetes tests stand on (tests/support/k8s/real/cluster.py): a real
kube-apiserver with RBAC and token users, the upstream CRDs, and a controller-manager whose service-account
controller lets pods pass admission."""

from __future__ import annotations

import json

import pytest
from kubernetes import client

KINDS = [("sparkoperator.k8s.io", "v1beta2", "sparkapplications"), ("ray.io", "v1", "rayjobs"),
         ("ray.io", "v1", "rayclusters"), ("kubernetes.dask.org", "v1", "daskjobs"),
         ("kubernetes.dask.org", "v1", "daskclusters"), ("kubernetes.dask.org", "v1", "daskworkergroups"),
         ("kubeflow.org", "v1", "pytorchjobs")]


def test_it_is_a_real_kube_apiserver(real_cluster):
    version = client.VersionApi(real_cluster.api_client()).get_code()
    # /version reports the source tree's own stamp: the commit of the v1.20.2 tag
    assert version.git_commit == "faecb196815e248d3ecfb03c680a4507229c2a56", version
    assert all(proc.poll() is None for proc in real_cluster.procs.values())
    assert real_cluster.url.startswith("https://127.0.0.1:")


@pytest.mark.parametrize(("group", "version", "plural"), KINDS)
def test_every_engine_kind_is_served(real_cluster, group, version, plural):
    custom = client.CustomObjectsApi(real_cluster.api_client())
    assert custom.list_namespaced_custom_object(group, version, "default", plural)["items"] == []


@pytest.mark.parametrize("user", ["worker", "triggerer", "nobody"])
def test_a_user_without_a_binding_is_refused(real_cluster, user):
    core = client.CoreV1Api(real_cluster.api_client(user))
    with pytest.raises(client.ApiException) as err:
        core.list_namespaced_pod("default")
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert f'User "{user}" cannot list resource "pods"' in message and 'namespace "default"' in message


def test_a_pod_passes_admission_and_its_unknown_field_is_pruned(real_cluster):
    core = client.CoreV1Api(real_cluster.api_client())
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "admission-probe"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    pod = core.create_namespaced_pod("default", body)
    try:
        assert pod.spec.service_account_name == "default"  # the ServiceAccount admission plugin filled it
        assert pod.status.phase == "Pending"  # no scheduler, no kubelet: nothing runs it
    finally:
        core.delete_namespaced_pod("admission-probe", "default", grace_period_seconds=0)


def test_the_custom_object_schema_prunes_an_unknown_field(real_cluster):
    custom = client.CustomObjectsApi(real_cluster.api_client())
    body = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": "prune-probe"},
            "spec": {"type": "Python", "mode": "cluster", "sparkVersion": "3.5.0", "image": "spark:3.5.0",
                     "mainApplicationFile": "local:///app.py", "driver": {"cores": 1, "noSuchField": 1},
                     "executor": {"instances": 1}, "noSuchTopField": "x"}}
    created = custom.create_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2", "default",
                                                     "sparkapplications", body)
    try:
        assert "noSuchTopField" not in created["spec"] and "noSuchField" not in created["spec"]["driver"]
        assert created["spec"]["driver"]["cores"] == 1
    finally:
        custom.delete_namespaced_custom_object("sparkoperator.k8s.io", "v1beta2", "default", "sparkapplications",
                                               "prune-probe")
