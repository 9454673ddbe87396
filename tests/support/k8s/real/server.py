""":class:`RealApiServer`: a real API server (:class:`RealCluster`) with the HTTP stand-in's test handle.

What :class:`tests.support.k8s.simulator.OperatorSimulator` and the ``k8s`` fixture need of a
``server``, on a real one:

- ``store``: a :class:`RemoteStore` (the admin's identity, straight to the API server), through
  which the simulated operators and kubelet become controllers of the real API;
- ``logs``: the kubelet's log hub, served to the API server by a :class:`KubeletEndpoint`
  (:meth:`register_node` creates the Node that points at it);
- ``host`` / ``port`` / ``connection_env`` / ``api_client`` / ``request_log`` / ``count`` /
  ``inject_fault`` / ``clear_faults``: a :class:`KubeApiProxy` in front of the API server, through
  which the provider connects;
- ``leftovers`` / ``reset``: what a test added, against what the cluster held at the start.

The three kinds the simulated operators create but that have no vendored CRD (RayCluster,
DaskCluster, DaskWorkerGroup) get a CRD that keeps every field (the stand-in stores them
unvalidated too), with the status subresource.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support.k8s.logs import LogHub
from tests.support.k8s.real.kubelet_endpoint import KubeletEndpoint
from tests.support.k8s.real.proxy import KubeApiProxy
from tests.support.k8s.real.store import RemoteStore
from tests.support.k8s.server import default_resources
from tests.support.k8s.store import ApiError, Resource

#: kinds the simulated operators create, with no vendored CRD: (group, plural, kind, short names)
EXTRA_KINDS = (("ray.io", "v1", "rayclusters", "RayCluster"),
               ("kubernetes.dask.org", "v1", "daskclusters", "DaskCluster"),
               ("kubernetes.dask.org", "v1", "daskworkergroups", "DaskWorkerGroup"))
#: what a fresh real cluster makes on its own (not a test's leftover)
_AUTOMATIC_CONFIGMAPS = frozenset({"kube-root-ca.crt"})


def extra_crd(group: str, version: str, plural: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}"},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": f"{kind}List"},
                     "versions": [{"name": version, "served": True, "storage": True,
                                   "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


def resources() -> list[Resource]:
    """The stand-in's kinds, and what a real cluster adds that changes (watched so that the cache knows
    when it has caught up with the server's revision, see :meth:`RemoteStore.catch_up`)."""
    return [*default_resources(), Resource("", "v1", "nodes", "Node", namespaced=False),
            Resource("apps", "v1", "replicasets", "ReplicaSet"),
            Resource("", "v1", "endpoints", "Endpoints", subresources=()),
            Resource("discovery.k8s.io", "v1beta1", "endpointslices", "EndpointSlice", subresources=()),
            Resource("", "v1", "serviceaccounts", "ServiceAccount", subresources=())]


#: kinds a real cluster derives from others (Services' endpoints): never a test's leftover
_DERIVED = frozenset({"nodes", "events", "endpoints", "endpointslices"})


class RealApiServer:
    """See the module's docstring. ``cluster``: a started :class:`RealCluster`; ``user``: the provider's identity."""

    host = "127.0.0.1"

    def __init__(self, cluster: Any, *, user: str = "admin", directory: str | Path | None = None) -> None:
        self.cluster, self.user = cluster, user
        self._owned_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="k8s-real-"))
        self.logs = LogHub()
        self.admin = cluster.api_client("admin")
        self.store = RemoteStore(self.admin, resources())
        self.proxy = KubeApiProxy(cluster.url, cluster.ca_file, self.directory)
        self.kubelet_endpoint: KubeletEndpoint | None = None
        self._baseline: set[tuple[str, str, str, str]] = set()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RealApiServer:
        self._apply_extra_crds()
        self.store.start()
        self.proxy.start()
        for ns in ("default",):
            self.kubeconfig_path(ns)
        return self

    def register_node(self, node_name: str, labels: dict[str, str], capacity: dict[str, Any]) -> None:
        """The Node of the simulated kubelet, with its log endpoint; then what the cluster holds is the baseline."""
        self.kubelet_endpoint = KubeletEndpoint(self.logs, self.directory / "kubelet", self._find_pod, node_name)
        self.kubelet_endpoint.register(self.store.http, labels, {k: str(v) for k, v in capacity.items()})
        time.sleep(0.5)  # the watches catch up with the node and what the controller-manager made
        self.store.catch_up()
        self._baseline = {self._key(res, obj) for res, obj in self.store.all_objects()}

    def stop(self) -> None:
        self.proxy.stop()
        if self.kubelet_endpoint is not None:
            self.kubelet_endpoint.stop()
        self.logs.shutdown()
        self.store.close()
        if self._owned_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _apply_extra_crds(self) -> None:
        from kubernetes import client

        api = client.ApiextensionsV1Api(self.admin)
        for group, version, plural, kind in EXTRA_KINDS:
            with contextlib.suppress(client.ApiException):
                api.create_custom_resource_definition(extra_crd(group, version, plural, kind))
        deadline = time.monotonic() + 30
        for group, _, plural, _ in EXTRA_KINDS:
            while True:
                crd = api.read_custom_resource_definition(f"{plural}.{group}")
                if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"CRD {plural}.{group} not Established after 30 s")
                time.sleep(0.2)

    def _find_pod(self, ns: str, name: str) -> dict[str, Any] | None:
        pod = self.store.try_get(self.store.resource("", "pods"), ns, name)
        if pod is None:
            with contextlib.suppress(ApiError):
                pod = self.store.get(self.store.resource("", "pods"), ns, name)
        return pod

    # ------------------------------------------------------------------ client configuration
    @property
    def port(self) -> int:
        return self.proxy.port

    @property
    def url(self) -> str:
        return self.proxy.url

    def kubeconfig_path(self, namespace: str = "default") -> Path:
        """A kubeconfig for ``user`` through the proxy (written once per namespace)."""
        path = self.directory / f"kubeconfig-{self.user}-{namespace}.yaml"
        if not path.exists():
            path.write_text(yaml.safe_dump({
                "apiVersion": "v1", "kind": "Config", "preferences": {},
                "clusters": [{"name": "real", "cluster": {"server": self.proxy.url,
                                                          "certificate-authority": str(self.proxy.cert)}}],
                "users": [{"name": self.user, "user": {"token": self.cluster.token(self.user)}}],
                "contexts": [{"name": "real", "context": {"cluster": "real", "user": self.user,
                                                          "namespace": namespace}}],
                "current-context": "real"}))
            path.chmod(0o600)
        return path

    def connection_json(self, namespace: str = "default") -> str:
        return json.dumps({"conn_type": "kubernetes",
                           "extra": {"kube_config_path": str(self.kubeconfig_path(namespace)), "namespace": namespace}})

    def connection_env(self, conn_id: str = "kubernetes_default", namespace: str = "default") -> dict[str, str]:
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(namespace)}

    def api_client(self) -> Any:
        """A client for ``user`` through the proxy."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig_path()), client_configuration=cfg)
        return client.ApiClient(cfg)

    # ------------------------------------------------------------------ the proxy's test API
    def inject_fault(self, **kw: Any) -> Any:
        return self.proxy.inject_fault(**kw)

    def clear_faults(self) -> None:
        self.proxy.clear_faults()

    def request_log(self, **kw: Any) -> Any:
        return self.proxy.request_log(**kw)

    def count(self, **kw: Any) -> int:
        return self.proxy.count(**kw)

    def clear_requests(self) -> None:
        self.proxy.clear_requests()

    # ------------------------------------------------------------------ leftovers
    @staticmethod
    def _key(res: Resource, obj: dict[str, Any]) -> tuple[str, str, str, str]:
        meta = obj["metadata"]
        return (res.group, res.plural, meta.get("namespace") or "", meta["name"])

    def _added(self) -> list[tuple[Resource, dict[str, Any]]]:
        out = []
        for res, obj in self.store.all_objects():
            if self._key(res, obj) in self._baseline or res.plural in _DERIVED:
                continue
            meta = obj["metadata"]
            if res.plural == "serviceaccounts" and meta["name"] == "default":
                continue
            if res.plural == "configmaps" and meta["name"] in _AUTOMATIC_CONFIGMAPS:
                continue
            if res.plural == "secrets" and obj.get("type") == "kubernetes.io/service-account-token":
                continue
            out.append((res, obj))
        return out

    def leftovers(self) -> list[str]:
        """Every object a test added (``kind ns/name``; events and what the cluster makes on its own excepted)."""
        return [f"{res.kind} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}".replace(" /", " ")
                for res, obj in self._added()]

    def reset(self) -> None:
        """Delete what tests added (finalizers dropped, no grace), the faults and the request log."""
        for res, obj in self._added():
            meta = obj["metadata"]
            with contextlib.suppress(ApiError):
                if meta.get("finalizers"):
                    self.store.mutate(res, meta.get("namespace"), meta["name"],
                                      lambda o: o["metadata"].__setitem__("finalizers", []))
                self.store.delete(res, meta.get("namespace"), meta["name"], grace_period=0)
        self.clear_faults()
        self.clear_requests()
