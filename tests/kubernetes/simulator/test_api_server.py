"""The simulated API server through the real ``kubernetes`` client and the cncf hooks (no operators)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from kubernetes import client, watch

from tests.support.k8s.server import KubeApiServer

G, V, P = "sparkoperator.k8s.io", "v1beta2", "sparkapplications"


def _app(name: str = "app", **spec: object) -> dict:
    return {"apiVersion": f"{G}/{V}", "kind": "SparkApplication", "metadata": {"name": name, "labels": {"team": "a"}},
            "spec": {"type": "Python", "sparkVersion": "3.5.0", "mainApplicationFile": "local:///app/main.py",
                     "driver": {}, "executor": {}, **spec}}


def _custom(server: KubeApiServer) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(server.api_client())


def _status(exc: client.ApiException) -> dict:
    return json.loads(exc.body)


def test_discovery_and_auth(k8s_api: KubeApiServer) -> None:
    api = k8s_api.api_client()
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")
    groups = {g.name for g in client.ApisApi(api).get_api_versions().groups}
    assert {"sparkoperator.k8s.io", "ray.io", "kubernetes.dask.org", "kubeflow.org", "apps", "batch"} <= groups
    assert "pods/log" in {r.name for r in client.CoreV1Api(api).get_api_resources().resources}
    wrong = client.Configuration(host=k8s_api.url, api_key={"BearerToken": "wrong"}, api_key_prefix={"BearerToken": "Bearer"})
    with pytest.raises(client.ApiException) as err:
        client.CoreV1Api(client.ApiClient(wrong)).list_namespace()
    assert err.value.status == 401


def test_custom_object_crud_with_kubernetes_semantics(k8s_api: KubeApiServer) -> None:
    co = _custom(k8s_api)
    made = co.create_namespaced_custom_object(G, V, "default", P, _app())
    meta = made["metadata"]
    assert meta["uid"] and meta["resourceVersion"] and meta["creationTimestamp"] and meta["generation"] == 1
    with pytest.raises(client.ApiException) as dup:
        co.create_namespaced_custom_object(G, V, "default", P, _app())
    assert dup.value.status == 409 and _status(dup.value)["reason"] == "AlreadyExists"
    gen = co.create_namespaced_custom_object(G, V, "default", P, {**_app(), "metadata": {"generateName": "app-"}})
    assert gen["metadata"]["name"].startswith("app-") and len(gen["metadata"]["name"]) == 9
    listed = co.list_namespaced_custom_object(G, V, "default", P, label_selector="team=a")["items"]
    assert [o["metadata"]["name"] for o in listed] == ["app"]
    assert co.list_namespaced_custom_object(G, V, "default", P, label_selector="team in (b,c)")["items"] == []
    # a status written with the main resource is ignored; /status changes only status
    patched = co.patch_namespaced_custom_object(G, V, "default", P, "app",
                                                {"spec": {"arguments": ["x"]}, "status": {"x": 1}})
    assert patched["spec"]["arguments"] == ["x"] and "status" not in patched and patched["metadata"]["generation"] == 2
    with pytest.raises(client.ApiException) as bad_status:  # /status is validated too (driverInfo is required)
        co.patch_namespaced_custom_object_status(G, V, "default", P, "app",
                                                 {"status": {"applicationState": {"state": "RUNNING"}}})
    assert bad_status.value.status == 422 and "status.driverInfo: Required value" in _status(bad_status.value)["message"]
    st = co.patch_namespaced_custom_object_status(G, V, "default", P, "app", {"status": {
        "applicationState": {"state": "RUNNING"}, "driverInfo": {}}})
    assert st["status"]["applicationState"]["state"] == "RUNNING" and st["metadata"]["generation"] == 2
    stale = dict(st, metadata={**st["metadata"], "resourceVersion": meta["resourceVersion"]})
    with pytest.raises(client.ApiException) as conflict:
        co.replace_namespaced_custom_object(G, V, "default", P, "app", stale)
    assert conflict.value.status == 409 and _status(conflict.value)["reason"] == "Conflict"
    jp = co.patch_namespaced_custom_object(G, V, "default", P, "app",
                                           [{"op": "add", "path": "/spec/arguments/-", "value": "y"}],
                                           _content_type="application/json-patch+json")
    assert jp["spec"]["arguments"] == ["x", "y"]
    core = client.CoreV1Api(k8s_api.api_client())
    core.create_namespaced_pod("default", {"metadata": {"name": "p", "labels": {"a": "1"}},
                                           "spec": {"containers": [{"name": "c", "image": "i:1"}]}})
    pod = core.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"b": "2"}}})  # strategic merge
    assert pod.metadata.labels == {"a": "1", "b": "2"}
    with pytest.raises(client.ApiException) as immutable:
        core.patch_namespaced_pod("p", "default", {"spec": {"containers": [{"name": "c", "command": ["x"]}]}})
    assert immutable.value.status == 422
    core.delete_namespaced_pod("p", "default")
    co.delete_namespaced_custom_object(G, V, "default", P, "app")
    co.delete_namespaced_custom_object(G, V, "default", P, gen["metadata"]["name"])
    with pytest.raises(client.ApiException) as gone:
        co.get_namespaced_custom_object(G, V, "default", P, "app")
    body = _status(gone.value)
    assert gone.value.status == 404 and body["kind"] == "Status" and body["reason"] == "NotFound"
    assert body["message"] == 'sparkapplications.sparkoperator.k8s.io "app" not found'
    with pytest.raises(client.ApiException) as no_ns:
        co.create_namespaced_custom_object(G, V, "nope", P, _app())
    assert no_ns.value.status == 404 and _status(no_ns.value)["message"] == 'namespaces "nope" not found'


def test_crd_defaults_are_applied_at_admission(k8s_api: KubeApiServer) -> None:
    job = {"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskJob", "metadata": {"name": "d"},
           "spec": {"job": {"spec": {"containers": [{"name": "job", "image": "i:1"}]}},
                    "cluster": {"spec": {"scheduler": {"spec": {"containers": []}, "service": {}},
                                         "worker": {"spec": {"containers": []}}}}}}
    made = _custom(k8s_api).create_namespaced_custom_object("kubernetes.dask.org", "v1", "default", "daskjobs", job)
    assert made["spec"]["job"]["spec"]["restartPolicy"] == "OnFailure"  # dask-kubernetes' daskjob.patch.yaml
    _custom(k8s_api).delete_namespaced_custom_object("kubernetes.dask.org", "v1", "default", "daskjobs", "d")


def test_invalid_objects_are_refused_with_the_field_path(k8s_api: KubeApiServer) -> None:
    co = _custom(k8s_api)
    with pytest.raises(client.ApiException) as wrong_type:
        co.create_namespaced_custom_object(G, V, "default", P, _app(sparkVersion=3))
    body = _status(wrong_type.value)
    assert wrong_type.value.status == 422 and body["reason"] == "Invalid"
    assert [c["field"] for c in body["details"]["causes"]] == ["spec.sparkVersion"]
    assert "must be of type string" in body["message"]
    with pytest.raises(client.ApiException) as missing:
        co.create_namespaced_custom_object(G, V, "default", P, {**_app(), "spec": {"type": "Python"}})
    fields = {c["field"] for c in _status(missing.value)["details"]["causes"]}
    assert missing.value.status == 422 and {"spec.sparkVersion", "spec.driver", "spec.executor"} <= fields
    with pytest.raises(client.ApiException) as enum:
        co.create_namespaced_custom_object(G, V, "default", P, _app(type="Go"))
    assert enum.value.status == 422 and _status(enum.value)["details"]["causes"][0]["reason"] == "FieldValueNotSupported"
    # unknown fields: a real server with fieldValidation=Strict answers 400 "strict decoding error"
    with pytest.raises(client.ApiException) as unknown:
        co.create_namespaced_custom_object(G, V, "default", P, _app(driverr={"cores": 1}))
    assert unknown.value.status == 400 and 'unknown field "spec.driverr"' in _status(unknown.value)["message"]
    # ... and Ignore (the client's choice) prunes it, as the default Warn would
    kept = co.create_namespaced_custom_object(G, V, "default", P, _app(driverr={"cores": 1}),
                                              field_validation="Ignore")
    assert "driverr" not in kept["spec"]
    # the driver template preserves unknown fields (x-kubernetes-preserve-unknown-fields)
    co.patch_namespaced_custom_object(G, V, "default", P, "app", {"spec": {"driver": {"template": {"anything": 1}}}})
    with pytest.raises(client.ApiException) as label:
        co.create_namespaced_custom_object(G, V, "default", P, {**_app("bad"), "metadata": {
            "name": "bad", "labels": {"run_id": "manual__2026-11-26T10:00:00+00:00"}}})
    assert label.value.status == 422 and "a valid label must be" in _status(label.value)["message"]
    with pytest.raises(client.ApiException) as name:
        co.create_namespaced_custom_object(G, V, "default", P, _app("Bad_Name"))
    assert name.value.status == 422 and "RFC 1123" in _status(name.value)["message"]
    co.delete_namespaced_custom_object(G, V, "default", P, "app")


def test_watch_streams_changes_and_resumes(k8s_api: KubeApiServer) -> None:
    co = _custom(k8s_api)
    co.create_namespaced_custom_object(G, V, "default", P, _app("w1"))
    seen: list[tuple[str, str, str]] = []

    def consume() -> None:
        for ev in watch.Watch().stream(co.list_namespaced_custom_object, G, V, "default", P, timeout_seconds=3):
            seen.append((ev["type"], ev["object"]["metadata"]["name"], ev["object"]["metadata"]["resourceVersion"]))
    t = threading.Thread(target=consume)
    t.start()
    time.sleep(0.5)
    co.patch_namespaced_custom_object_status(G, V, "default", P, "w1", {"status": {
        "applicationState": {"state": "X"}, "driverInfo": {}}})
    co.create_namespaced_custom_object(G, V, "default", P, _app("w2"))
    co.delete_namespaced_custom_object(G, V, "default", P, "w1")
    t.join(10)
    assert [(k, n) for k, n, _ in seen] == [("ADDED", "w1"), ("MODIFIED", "w1"), ("ADDED", "w2"), ("DELETED", "w1")]
    # resume after the MODIFIED event: only what came later
    resumed = []
    for ev in watch.Watch().stream(co.list_namespaced_custom_object, G, V, "default", P, timeout_seconds=1,
                                   resource_version=seen[1][2]):
        resumed.append((ev["type"], ev["object"]["metadata"]["name"]))
    assert resumed == [("ADDED", "w2"), ("DELETED", "w1")]
    co.delete_namespaced_custom_object(G, V, "default", P, "w2")
    assert k8s_api.count(verb="watch", resource=P) == 2


def test_owner_references_garbage_collection_and_finalizers(k8s_api: KubeApiServer) -> None:
    co, core = _custom(k8s_api), client.CoreV1Api(k8s_api.api_client())
    owner = co.create_namespaced_custom_object(G, V, "default", P, _app("owner"))
    ref = {"apiVersion": f"{G}/{V}", "kind": "SparkApplication", "name": "owner", "uid": owner["metadata"]["uid"],
           "controller": True}
    pod = core.create_namespaced_pod("default", {"metadata": {"name": "p", "ownerReferences": [ref]},
                                                 "spec": {"containers": [{"name": "c", "image": "i:1"}]}})
    assert pod.status.phase == "Pending" and pod.spec.restart_policy == "Always"
    core.create_namespaced_service("default", {"metadata": {"name": "s", "ownerReferences": [ref]},
                                               "spec": {"selector": {"a": "b"}, "ports": [{"port": 80}]}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "keep"}, "data": {"k": "v"}})
    co.patch_namespaced_custom_object(G, V, "default", P, "owner", {"metadata": {"finalizers": ["x/y"]}})
    co.delete_namespaced_custom_object(G, V, "default", P, "owner")
    pending = co.get_namespaced_custom_object(G, V, "default", P, "owner")
    assert pending["metadata"]["deletionTimestamp"]  # held by its finalizer
    assert core.read_namespaced_pod("p", "default")
    co.patch_namespaced_custom_object(G, V, "default", P, "owner", {"metadata": {"finalizers": None}})
    assert core.list_namespaced_pod("default").items == []
    assert core.list_namespaced_service("default").items == []
    assert [c.metadata.name for c in core.list_namespaced_config_map("default").items] == ["keep"]
    core.delete_namespaced_config_map("keep", "default")
    assert k8s_api.leftovers() == []


def test_fault_injection_and_request_log(k8s_api: KubeApiServer) -> None:
    co = _custom(k8s_api)
    fault = k8s_api.inject_fault(verb="create", resource=P, status=429, retry_after=2)
    with pytest.raises(client.ApiException) as busy:
        co.create_namespaced_custom_object(G, V, "default", P, _app())
    assert busy.value.status == 429 and busy.value.headers["Retry-After"] == "2"
    assert _status(busy.value)["details"]["retryAfterSeconds"] == 2 and fault.hits == 1
    co.create_namespaced_custom_object(G, V, "default", P, _app())  # the fault was for one request only
    k8s_api.inject_fault(verb="get", resource=P, status=500, times=2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as boom:
            co.get_namespaced_custom_object(G, V, "default", P, "app")
        assert boom.value.status == 500 and _status(boom.value)["reason"] == "InternalError"
    k8s_api.inject_fault(verb="get", resource=P, status=404, name="app")
    with pytest.raises(client.ApiException) as missing:
        co.get_namespaced_custom_object(G, V, "default", P, "app")
    assert missing.value.status == 404 and _status(missing.value)["reason"] == "NotFound"
    k8s_api.inject_fault(verb="create", resource=P, status=409)
    with pytest.raises(client.ApiException) as exists:
        co.create_namespaced_custom_object(G, V, "default", P, _app("other"))
    assert exists.value.status == 409 and _status(exists.value)["reason"] == "AlreadyExists"
    assert co.get_namespaced_custom_object(G, V, "default", P, "app")["metadata"]["name"] == "app"
    co.delete_namespaced_custom_object(G, V, "default", P, "app")
    creates = k8s_api.request_log(verb="create", resource=P)
    assert [(r.status, r.injected) for r in creates] == [(429, True), (201, False), (409, True)]
    assert k8s_api.count(verb="get", resource=P, status=500) == 2
    assert k8s_api.count(verb="delete", resource=P) == 1


def test_kubernetes_hook_through_an_airflow_connection(k8s_api: KubeApiServer) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    hook = KubernetesHook(conn_id="k8s_sim")
    made = hook.create_custom_object(G, V, P, _app("hooked"))
    assert made["metadata"]["uid"]
    # get_custom_object retries transient errors (generic_api_retry): one 500 then the object
    k8s_api.inject_fault(verb="get", resource=P, status=500)
    assert hook.get_custom_object(G, V, P, "hooked")["metadata"]["uid"] == made["metadata"]["uid"]
    assert k8s_api.count(verb="get", resource=P) == 2
    assert hook.get_namespace() == "default"
    assert hook.core_v1_client.list_namespaced_pod("default").items == []
    hook.delete_custom_object(G, V, P, "hooked")
    with pytest.raises(client.ApiException) as gone:
        hook.get_custom_object(G, V, P, "hooked")
    assert gone.value.status == 404


def test_async_kubernetes_hook(k8s_api: KubeApiServer) -> None:
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

    core = client.CoreV1Api(k8s_api.api_client())
    core.create_namespaced_pod("default", {"metadata": {"name": "ap"},
                                           "spec": {"containers": [{"name": "c", "image": "i:1"}]}})
    k8s_api.store.create(k8s_api.store.resource("", "events"), "default", {
        "apiVersion": "v1", "kind": "Event", "metadata": {"name": "ap.1"}, "reason": "Scheduled", "message": "m",
        "involvedObject": {"kind": "Pod", "name": "ap", "namespace": "default"}})

    async def run() -> tuple[str, list[str]]:
        hook = AsyncKubernetesHook(conn_id="k8s_sim")
        pod = await hook.get_pod("ap", "default")
        events = await hook.get_pod_events("ap", "default")
        return pod.status.phase, [e.reason for e in events.items]

    assert asyncio.run(run()) == ("Pending", ["Scheduled"])
    core.delete_namespaced_pod("ap", "default")


def test_namespaces_and_services(k8s_api: KubeApiServer) -> None:
    core = client.CoreV1Api(k8s_api.api_client())
    core.create_namespace({"metadata": {"name": "team-a"}})
    assert core.read_namespace("team-a").status.phase == "Active"
    svc = core.create_namespaced_service("team-a", {"metadata": {"name": "web"},
                                                    "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}})
    assert svc.spec.type == "ClusterIP" and svc.spec.cluster_ip and svc.spec.ports[0].target_port == 80
    with pytest.raises(client.ApiException) as bad:
        core.create_namespaced_service("team-a", {"metadata": {"name": "1web"}, "spec": {"ports": [{"port": 80}]}})
    assert bad.value.status == 422 and "DNS-1035" in _status(bad.value)["message"]
    core.delete_namespace("team-a")
    with pytest.raises(client.ApiException) as gone:
        core.read_namespaced_service("web", "team-a")
    assert gone.value.status == 404
    assert k8s_api.leftovers() == []
