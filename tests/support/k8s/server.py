"""A Kubernetes API server over plain HTTP on loopback, for the real ``kubernetes`` client and the cncf hooks.

Start one, point a client at its kubeconfig, and it answers as a (single, in-memory) API server::

    with KubeApiServer() as server:
        kubernetes.config.load_kube_config(server.kubeconfig_path)
        os.environ.update(server.connection_env("k8s_sim"))  # AIRFLOW_CONN_K8S_SIM for KubernetesHook
        server.inject_fault(verb="create", resource="sparkapplications", status=429, times=2, retry_after=1)
        ...
        assert server.count(verb="create", resource="sparkapplications") == 3

Object semantics live in :mod:`tests.support.k8s.store`; this module is the HTTP layer: routing, the
``Status`` bodies, watch streams (``?watch=true``: one JSON event per line, chunked), pod logs
(``/log`` with ``container``, ``follow``, ``tailLines``, ``timestamps``, ``previous``,
``sinceSeconds``, ``limitBytes``), discovery (``/version``, ``/api``, ``/apis``...), bearer-token
auth, fault injection and the request log.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.support.k8s.logs import LogHub, rfc3339nano
from tests.support.k8s.store import ApiError, Resource, Store, WatchEvent, field_matcher, label_matcher

#: The four custom kinds and their schemas (tests/support/crds.py: the vendored upstream CRDs).
CUSTOM_KINDS = {
    "SparkApplication": ("sparkoperator.k8s.io", "v1beta2", "sparkapplications", ("sparkapp",)),
    "RayJob": ("ray.io", "v1", "rayjobs", ()),
    "DaskJob": ("kubernetes.dask.org", "v1", "daskjobs", ()),
    "PyTorchJob": ("kubeflow.org", "v1", "pytorchjobs", ()),
}


def default_resources() -> list[Resource]:
    """Core pods/services/events/namespaces/configmaps/secrets, apps/v1 deployments, batch/v1 jobs,
    the four custom kinds (validated against their CRDs) and the intermediate kinds their operators
    create (RayCluster, DaskCluster, DaskWorkerGroup: stored, not validated)."""
    from tests.support import crds

    out = [
        Resource("", "v1", "pods", "Pod", subresources=("status", "log"), short_names=("po",)),
        Resource("", "v1", "services", "Service", short_names=("svc",)),
        Resource("", "v1", "events", "Event", subresources=(), short_names=("ev",)),
        Resource("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
        Resource("", "v1", "configmaps", "ConfigMap", subresources=(), short_names=("cm",)),
        Resource("", "v1", "secrets", "Secret", subresources=()),
        Resource("apps", "v1", "deployments", "Deployment", short_names=("deploy",)),
        Resource("batch", "v1", "jobs", "Job"),
        Resource("ray.io", "v1", "rayclusters", "RayCluster"),
        Resource("kubernetes.dask.org", "v1", "daskclusters", "DaskCluster"),
        Resource("kubernetes.dask.org", "v1", "daskworkergroups", "DaskWorkerGroup"),
    ]
    for kind, (group, version, plural, short) in CUSTOM_KINDS.items():
        out.append(Resource(group, version, plural, kind, schema=crds.schema(kind, f"{group}/{version}"),
                            short_names=short))
    return out


@dataclass
class RequestRecord:
    """One request as the server saw it: Kubernetes verb, path, answer."""

    verb: str  # get list watch create update patch delete deletecollection, or "discovery" / "unknown"
    method: str
    path: str
    query: dict[str, str]
    status: int
    resource: str | None = None  # plural, "pods/log", "sparkapplications/status"
    namespace: str | None = None
    name: str | None = None
    injected: bool = False
    time: float = field(default_factory=time.time)


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``verb`` / ``resource`` (/ ``namespace`` / ``name``) with ``status``."""

    status: int
    verb: str | None = None
    resource: str | None = None
    namespace: str | None = None
    name: str | None = None
    times: int = 1
    retry_after: int | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, rec: RequestRecord) -> bool:
        return (self.hits < self.times
                and (self.verb is None or self.verb == rec.verb)
                and (self.resource is None or self.resource == rec.resource)
                and (self.namespace is None or self.namespace == rec.namespace)
                and (self.name is None or self.name == rec.name))

    def error(self, rec: RequestRecord) -> ApiError:
        reasons = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "AlreadyExists",
                   410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
                   503: "ServiceUnavailable", 504: "Timeout"}
        reason = reasons.get(self.status, "Unknown")
        what = f'{rec.resource or "resource"} "{rec.name or ""}"'
        default = {404: f"{what} not found", 409: f"{what} already exists",
                   429: "storage is (re)initializing" if self.retry_after is None else "Too many requests, please try "
                   "again later.", 500: "Internal error occurred: injected fault"}.get(self.status, "injected fault")
        details: dict[str, Any] = {"name": rec.name or "", "kind": rec.resource or ""}
        headers = {}
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
            headers["Retry-After"] = str(self.retry_after)
        return ApiError(self.status, reason, self.message or default, details, headers)


class RequestJournal:
    """Faults to inject and the log of requests answered: the test API of the stand-in and of the proxy in
    front of the real server (``tests/support/k8s/real/proxy.py``). Needs ``_lock``, ``faults``, ``requests``."""

    _lock: threading.Lock
    faults: list[Fault]
    requests: list[RequestRecord]

    def inject_fault(self, *, status: int, verb: str | None = None, resource: str | None = None,
                     namespace: str | None = None, name: str | None = None, times: int = 1,
                     retry_after: int | None = None, message: str | None = None) -> Fault:
        """Answer the next ``times`` matching requests with ``status`` (a Kubernetes ``Status`` body;
        ``retry_after`` adds the ``Retry-After`` header and ``details.retryAfterSeconds``).
        ``verb``: get, list, watch, create, update, patch, delete, deletecollection; ``resource``: the
        plural, with ``/status`` or ``/log`` for a subresource. Returns the :class:`Fault` (see ``hits``)."""
        fault = Fault(status, verb, resource, namespace, name, times, retry_after, message)
        with self._lock:
            self.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def take_fault(self, rec: RequestRecord) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(rec):
                    fault.hits += 1
                    return fault
        return None

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def request_log(self, *, verb: str | None = None, resource: str | None = None, status: int | None = None,
                    name: str | None = None) -> list[RequestRecord]:
        with self._lock:
            return [r for r in self.requests
                    if (verb is None or r.verb == verb) and (resource is None or r.resource == resource)
                    and (status is None or r.status == status) and (name is None or r.name == name)]

    def count(self, **kw: Any) -> int:
        """How many requests matched (``verb=``, ``resource=``, ``status=``, ``name=``)."""
        return len(self.request_log(**kw))

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], api: KubeApiServer) -> None:
        self.api = api
        super().__init__(addr, _Handler)


class KubeApiServer(RequestJournal):
    """The API server. ``start()`` / ``stop()`` (or ``with``); everything else is thread-safe.

    :param token: the bearer token clients must send (``None``: no authentication); a random one by default.
    :param field_validation: what the server does with unknown fields when the request does not say
        (``?fieldValidation=``): ``Strict`` (default here, refuse with 400), ``Warn`` (the real default
        since 1.27: drop, with a ``Warning`` header) or ``Ignore`` (drop).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, token: str | None = "auto",
                 field_validation: str = "Strict", resources: Iterable[Resource] | None = None,
                 directory: str | Path | None = None) -> None:
        if not host.startswith("127."):
            raise ValueError("the simulated API server listens on loopback only")
        self.host, self._port = host, port
        self.token = secrets.token_hex(16) if token == "auto" else token
        self.store = Store(resources if resources is not None else default_resources(),
                           field_validation=field_validation)
        self.logs = LogHub()
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._owned_dir = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="k8s-sim-api-"))
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._sockets: set[socket.socket] = set()
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> KubeApiServer:
        self._httpd = _HTTPServer((self.host, self._port), self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="k8s-sim-api", daemon=True)
        self._thread.start()
        self.kubeconfig_path.write_text(yaml.safe_dump(self.kubeconfig()))
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.store.close()
        self.logs.shutdown()
        if self._httpd is not None:
            self._httpd.shutdown()
            with self._lock:
                socks = list(self._sockets)
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
        if self._owned_dir:
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ client configuration
    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.directory / "kubeconfig.yaml"

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        return {
            "apiVersion": "v1", "kind": "Config", "preferences": {},
            "clusters": [{"name": "k8s-sim", "cluster": {"server": self.url}}],
            "users": [{"name": "k8s-sim", "user": user}],
            "contexts": [{"name": "k8s-sim", "context": {"cluster": "k8s-sim", "user": "k8s-sim",
                                                         "namespace": namespace}}],
            "current-context": "k8s-sim",
        }

    def connection_json(self, namespace: str = "default") -> str:
        """An Airflow ``kubernetes`` connection (JSON) that loads this server's kubeconfig."""
        return json.dumps({"conn_type": "kubernetes",
                           "extra": {"kube_config_path": str(self.kubeconfig_path), "namespace": namespace}})

    def connection_env(self, conn_id: str = "kubernetes_default", namespace: str = "default") -> dict[str, str]:
        """``{"AIRFLOW_CONN_<ID>": <connection JSON>}`` for ``KubernetesHook(conn_id)`` / ``AsyncKubernetesHook``."""
        return {f"AIRFLOW_CONN_{conn_id.upper()}": self.connection_json(namespace)}

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` loaded from the kubeconfig file (not the global default)."""
        from kubernetes import client, config

        cfg = client.Configuration()
        config.load_kube_config(config_file=str(self.kubeconfig_path), client_configuration=cfg)
        return client.ApiClient(cfg)

    # ------------------------------------------------------------------ leftovers
    BASELINE_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})

    def leftovers(self) -> list[str]:
        """Every object a test left behind (``kind ns/name``), baseline namespaces excepted."""
        out = []
        for res, obj in self.store.all_objects():
            meta = obj["metadata"]
            if res.plural == "namespaces" and meta["name"] in self.BASELINE_NAMESPACES:
                continue
            out.append(f"{res.kind} {meta.get('namespace', '')}/{meta['name']}".replace(" /", " "))
        return out

    def reset(self) -> None:
        """Delete every object (events included), the faults and the request log."""
        for res, obj in self.store.all_objects():
            meta = obj["metadata"]
            if res.plural == "namespaces" and meta["name"] in self.BASELINE_NAMESPACES:
                continue
            with contextlib.suppress(ApiError):
                if meta.get("finalizers"):
                    self.store.mutate(res, meta.get("namespace"), meta["name"],
                                      lambda o: o["metadata"].__setitem__("finalizers", []))
                self.store.delete(res, meta.get("namespace"), meta["name"], grace_period=0)
        self.clear_faults()
        self.clear_requests()

    # ------------------------------------------------------------------ discovery documents
    def _discovery(self, parts: list[str]) -> dict[str, Any] | None:
        resources = list(self.store.resources.values())
        if parts == ["version"]:
            return {"major": "1", "minor": "33", "gitVersion": "v1.33.0-k8s-sim", "gitCommit": "k8s-sim",
                    "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
                    "compiler": "gc", "platform": "linux/amd64"}
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": f"{self.host}:{self.port}"}]}
        if parts == ["apis"]:
            groups = sorted({(r.group, r.version) for r in resources if r.group})
            return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
        if len(parts) == 2 and parts[0] == "apis":
            versions = sorted({r.version for r in resources if r.group == parts[1]})
            if not versions:
                return None
            return {"kind": "APIGroup", "apiVersion": "v1", "name": parts[1],
                    "versions": [{"groupVersion": f"{parts[1]}/{v}", "version": v} for v in versions],
                    "preferredVersion": {"groupVersion": f"{parts[1]}/{versions[0]}", "version": versions[0]}}
        if parts == ["api", "v1"] or (len(parts) == 3 and parts[0] == "apis"):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            entries = []
            for r in resources:
                if r.group != group or r.version != version:
                    continue
                verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
                entries.append({"name": r.plural, "singularName": r.kind.lower(), "namespaced": r.namespaced,
                                "kind": r.kind, "verbs": verbs, "shortNames": list(r.short_names)})
                for sub in r.subresources:
                    entries.append({"name": f"{r.plural}/{sub}", "singularName": "", "namespaced": r.namespaced,
                                    "kind": "Pod" if sub == "log" else r.kind,
                                    "verbs": ["get"] if sub == "log" else ["get", "patch", "update"]})
            if not entries:
                return None
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": f"{group}/{version}" if group else version, "resources": entries}
        return None


@dataclass
class _Route:
    res: Resource
    namespace: str | None
    name: str | None
    sub: str | None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.api._lock:
            self.server.api._sockets.add(self.connection)

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.api._lock:
            self.server.api._sockets.discard(self.connection)

    # -------------------------------------------------------------- plumbing
    @property
    def api(self) -> KubeApiServer:
        return self.server.api

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._handle("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def _log_now(self, code: int) -> None:
        """Record the request before the answer leaves: a client must find it in the log once answered."""
        rec = getattr(self, "_rec", None)
        if rec is not None and not getattr(self, "_logged", False):
            rec.status = rec.status or code
            self._logged = True
            self.api.record(rec)

    def _send_json(self, code: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self._log_now(code)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, err: ApiError) -> None:
        self._send_json(err.code, err.status(), err.headers)

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError:
                raise ApiError(400, "BadRequest", "the body of the request was in an unknown format") from None

    def _route(self, parts: list[str]) -> _Route | None:
        store = self.api.store
        if parts[:2] == ["api", "v1"]:
            group, rest = "", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, rest = parts[1], parts[3:]
            if not any(r.group == group and r.version == parts[2] for r in store.resources.values()):
                return None
        else:
            return None
        if not rest:
            return None
        ns = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            ns, rest = rest[1], rest[2:]
        try:
            res = store.resource(group, rest[0])
        except ApiError:
            return None
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub and sub not in res.subresources):
            return None
        return _Route(res, ns, name, sub)

    # -------------------------------------------------------------- dispatch
    def _handle(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        rec = RequestRecord("unknown", method, url.path, query, 0)
        self._rec, self._logged = rec, False
        try:
            if self.api.token and self.headers.get("Authorization") != f"Bearer {self.api.token}":
                rec.status = 401
                self._send_json(401, ApiError(401, "Unauthorized", "Unauthorized").status())
                return
            if method == "GET" and parts in (["healthz"], ["livez"], ["readyz"]):
                rec.verb, rec.status = "discovery", 200
                data = b"ok"
                self._log_now(200)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            doc = self.api._discovery(parts) if method == "GET" else None
            if doc is not None:
                rec.verb, rec.status = "discovery", 200
                self._send_json(200, doc)
                return
            route = self._route(parts)
            if route is None:
                rec.status = 404
                self._send_json(404, ApiError(404, "NotFound", "the server could not find the requested resource",
                                              {}).status())
                return
            rec.resource = f"{route.res.plural}/{route.sub}" if route.sub else route.res.plural
            rec.namespace, rec.name = route.namespace, route.name
            rec.verb = _verb(method, route, query)
            fault = self.api.take_fault(rec)
            if fault is not None:
                err = fault.error(rec)
                rec.status, rec.injected = err.code, True
                self._read_body()
                self._send_error(err)
                return
            self._serve(method, route, query, rec)
        except ApiError as err:
            rec.status = err.code
            self._send_error(err)
        except (BrokenPipeError, ConnectionResetError):
            rec.status = rec.status or 499
        except Exception as exc:  # noqa: BLE001 - answer like an API server's panic handler
            rec.status = 500
            with contextlib.suppress(OSError):
                self._send_json(500, ApiError(500, "InternalError", f"simulator error: {exc!r}").status())
        finally:
            if rec.status == 0:
                rec.status = 200
            self._log_now(rec.status)

    def _serve(self, method: str, route: _Route, q: dict[str, str], rec: RequestRecord) -> None:
        store, res, ns, name = self.api.store, route.res, route.namespace, route.name
        fv = q.get("fieldValidation")
        dry = bool(q.get("dryRun"))
        if route.sub == "log":
            rec.status = 200
            self._pod_log(ns, name or "", q, rec)
            return
        if rec.verb == "watch":
            rec.status = 200
            self._watch(res, ns, q, name)
            return
        if rec.verb == "list":
            items, rv = store.list(res, ns, label_selector=q.get("labelSelector"),
                                   field_selector=q.get("fieldSelector"))
            meta: dict[str, Any] = {"resourceVersion": str(rv)}
            limit = int(q.get("limit") or 0)
            start = int(q.get("continue") or 0) if (q.get("continue") or "").isdigit() else 0
            if limit:
                if start + limit < len(items):
                    meta["continue"] = str(start + limit)
                    meta["remainingItemCount"] = len(items) - start - limit
                items = items[start: start + limit]
            for item in items:
                item.setdefault("apiVersion", res.api_version)
                item.setdefault("kind", res.kind)
            rec.status = 200
            self._send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta,
                                  "items": items})
            return
        if rec.verb == "get":
            rec.status = 200
            self._send_json(200, store.get(res, ns, name or ""))
            return
        body = self._read_body()
        if rec.verb == "create":
            if name is not None:
                raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
            obj, warnings = store.create_ex(res, ns, body or {}, field_validation=fv, dry_run=dry)
            rec.name = obj["metadata"]["name"]
            rec.status = 201
            self._send_json(201, obj, _warning_headers(warnings))
        elif rec.verb == "update":
            rec.status = 200
            self._send_json(200, store.update(res, ns, name or "", body or {}, subresource=route.sub,
                                              field_validation=fv))
        elif rec.verb == "patch":
            rec.status = 200
            self._send_json(200, store.patch(res, ns, name or "", body, self.headers.get("Content-Type") or "",
                                             subresource=route.sub, field_validation=fv))
        elif rec.verb == "delete":
            opts = body if isinstance(body, dict) else {}
            propagation = q.get("propagationPolicy") or opts.get("propagationPolicy")
            grace = q.get("gracePeriodSeconds") or opts.get("gracePeriodSeconds")
            obj = store.delete(res, ns, name or "", propagation=propagation, preconditions=opts.get("preconditions"),
                               grace_period=int(grace) if grace not in (None, "") else None)
            rec.status = 202 if store.try_get(res, ns, name or "") is not None else 200
            self._send_json(rec.status, obj)
        elif rec.verb == "deletecollection":
            items, _ = store.list(res, ns, label_selector=q.get("labelSelector"), field_selector=q.get("fieldSelector"))
            for item in items:
                with contextlib.suppress(ApiError):
                    store.delete(res, item["metadata"].get("namespace"), item["metadata"]["name"])
            rec.status = 200
            self._send_json(200, {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": {},
                                  "items": items})
        else:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -------------------------------------------------------------- streaming
    def _start_stream(self, content_type: str) -> None:
        self._log_now(200)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        self.close_connection = True

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    def _end_stream(self) -> None:
        with contextlib.suppress(OSError):
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    def _watch(self, res: Resource, ns: str | None, q: dict[str, str], name: str | None) -> None:
        store = self.api.store
        labels_ok = label_matcher(q.get("labelSelector"))
        field_sel = q.get("fieldSelector")
        if name:  # GET .../name?watch=true (legacy single-object watch)
            field_sel = f"metadata.name={name}" + (f",{field_sel}" if field_sel else "")
        fields_ok = field_matcher(field_sel)
        timeout = float(q.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        rv_param = q.get("resourceVersion") or ""

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            if ns and res.namespaced and meta.get("namespace") != ns:
                return False
            return labels_ok(meta.get("labels") or {}) and fields_ok(obj)

        def event(kind: str, obj: dict[str, Any]) -> bytes:
            obj.setdefault("apiVersion", res.api_version)
            obj.setdefault("kind", res.kind)
            return json.dumps({"type": kind, "object": obj}).encode() + b"\n"

        with store.cond:
            if rv_param in ("", "0"):
                items, cursor = store.list(res, ns, label_selector=q.get("labelSelector"), field_selector=field_sel)
                initial = [event("ADDED", o) for o in items]
                expired = None
            else:
                cursor, initial = int(rv_param), []
                try:
                    store.events_after(cursor)
                    expired = None
                except ApiError as err:
                    expired = err
        self._start_stream("application/json")
        try:
            if expired is not None:
                self._chunk(json.dumps({"type": "ERROR", "object": expired.status()}).encode() + b"\n")
                return
            for data in initial:
                self._chunk(data)
            while not self.api.stopping.is_set() and time.monotonic() < deadline:
                with store.cond:
                    try:
                        events: list[WatchEvent] = store.events_after(cursor)
                    except ApiError as err:
                        self._chunk(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
                        return
                    if not events:
                        if store.closed:
                            return
                        store.cond.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                        continue
                for e in events:
                    cursor = e.rv
                    if e.res.key == res.key and matches(e.obj):
                        self._chunk(event(e.type, e.obj))
        finally:
            self._end_stream()

    def _pod_log(self, ns: str | None, name: str, q: dict[str, str], rec: RequestRecord) -> None:
        store, hub = self.api.store, self.api.logs
        pod = store.get(store.resource("", "pods"), ns, name)
        containers = [c["name"] for c in pod["spec"].get("containers", [])]
        init = [c["name"] for c in pod["spec"].get("initContainers", [])]
        container = q.get("container")
        if not container:
            if len(containers) != 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}, choose one of: "
                               f"[{' '.join(containers)}]" + (f" or one of the init containers: [{' '.join(init)}]"
                                                              if init else ""))
            container = containers[0]
        if container not in containers + init:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        uid = pod["metadata"]["uid"]
        runs = hub.runs(ns or "", name, uid, container)
        previous = q.get("previous") in ("true", "1", "True")
        if previous:
            if len(runs) < 2:
                raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
            log = runs[-2]
        else:
            if not runs:
                raise ApiError(400, "BadRequest", _waiting_message(pod, container, name))
            log = runs[-1]
        follow = q.get("follow") in ("true", "1", "True") and not previous
        timestamps = q.get("timestamps") in ("true", "1", "True")
        tail = int(q["tailLines"]) if (q.get("tailLines") or "").lstrip("-").isdigit() else None
        since = float(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None

        def render(lines: list[tuple[float, bytes]]) -> bytes:
            return b"".join((rfc3339nano(t).encode() + b" " + line) if timestamps else line for t, line in lines)

        with hub.cond:
            lines = list(log.lines)
        if since is not None:
            cutoff = time.time() - since
            lines = [ln for ln in lines if ln[0] >= cutoff]
        if tail is not None and tail >= 0:
            lines = lines[-tail:] if tail else []
        if not follow:
            data = render(lines)
            if limit is not None:
                data = data[:limit]
            self._log_now(200)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        self._start_stream("text/plain")
        sent_bytes = 0
        cursor = len(log.lines)
        try:
            data = render(lines)
            if limit is not None:
                data = data[:limit]
            self._chunk(data)
            sent_bytes += len(data)
            while not self.api.stopping.is_set():
                with hub.cond:
                    new = log.lines[cursor:]
                    cursor = len(log.lines)
                    if not new:
                        if log.closed or hub.closed:
                            return
                        hub.cond.wait(0.5)
                        continue
                data = render(new)
                if limit is not None:
                    data = data[: max(0, limit - sent_bytes)]
                self._chunk(data)
                sent_bytes += len(data)
                if limit is not None and sent_bytes >= limit:
                    return
        finally:
            self._end_stream()


def _verb(method: str, route: _Route, q: dict[str, str]) -> str:
    if method == "GET":
        if route.sub == "log":
            return "get"
        if q.get("watch") in ("true", "1", "True"):
            return "watch"
        return "get" if route.name else "list"
    if method == "POST":
        return "create"
    if method == "PUT":
        return "update"
    if method == "PATCH":
        return "patch"
    if method == "DELETE":
        return "delete" if route.name else "deletecollection"
    return "unknown"


def _warning_headers(warnings: list[str]) -> dict[str, str]:
    return {"Warning": ", ".join(f'299 - "{w}"'.replace('"unknown', '"unknown') for w in warnings)} if warnings else {}


def _waiting_message(pod: dict[str, Any], container: str, name: str) -> str:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container and "waiting" in (status.get("state") or {}):
            reason = status["state"]["waiting"].get("reason") or "ContainerCreating"
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                return f'container "{container}" in pod "{name}" is waiting to start: trying and failing to pull image'
            return f'container "{container}" in pod "{name}" is waiting to start: {reason}'
    return f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
