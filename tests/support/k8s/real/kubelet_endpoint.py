"""The stand-in kubelet's HTTPS endpoint and its Node: ``pods/log`` through a real API server.

A real API server answers ``GET .../pods/<pod>/log`` by proxying to the kubelet of the pod's node:
the node's address (``status.addresses``, here ``InternalIP`` 127.0.0.1) and port
(``status.daemonEndpoints.kubeletEndpoint.Port``), path ``/containerLogs/<ns>/<pod>/<container>``
with the query (``follow``, ``tailLines``, ``timestamps``, ``previous``, ``sinceSeconds``,
``limitBytes``). The API server checks the pod, its node and the container name first, and passes
a kubelet error (non-2xx) on with its status code and body as the message. It does not verify the
kubelet's certificate unless ``--kubelet-certificate-authority`` is set.

:class:`KubeletEndpoint` registers the Node (:meth:`register`) and serves that path from the
simulated kubelet's :class:`~tests.support.k8s.logs.LogHub`, on loopback.
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.k8s.logs import LogHub, rfc3339nano
from tests.support.k8s.real.tls import self_signed, server_context
from tests.support.k8s.store import ApiError


def _true(value: str | None) -> bool:
    return value in ("true", "1", "True")


class KubeletEndpoint:
    """``/containerLogs/...`` over HTTPS on ``127.0.0.1`` for one node; ``find_pod(ns, name)`` returns the pod."""

    def __init__(self, logs: LogHub, directory: Path, find_pod: Any, node_name: str) -> None:
        self.logs, self.find_pod, self.node_name = logs, find_pod, node_name
        cert, key = self_signed(directory, "kubelet")
        self._httpd = _Server(("127.0.0.1", 0), self)
        self._httpd.socket = server_context(cert, key).wrap_socket(self._httpd.socket, server_side=True)
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="kubelet-endpoint", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def node(self, labels: dict[str, str], capacity: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node_name, "labels": labels},
                "status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                           "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}},
                           "capacity": capacity, "allocatable": capacity,
                           "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                           "message": "the simulated kubelet is posting ready status"}]}}

    def register(self, http: Any, labels: dict[str, str], capacity: dict[str, str]) -> None:
        """Create (or replace) the Node with this endpoint's address and port, status included."""
        body = self.node(labels, capacity)
        try:
            http.request("POST", "/api/v1/nodes", body)
        except ApiError as err:
            if err.code != 409:
                raise
        current = http.request("GET", f"/api/v1/nodes/{self.node_name}")
        current["status"] = body["status"]
        http.request("PUT", f"/api/v1/nodes/{self.node_name}/status", current)

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, addr: tuple[str, int], endpoint: KubeletEndpoint) -> None:
        self.endpoint = endpoint
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def _text(self, code: int, text: str) -> None:
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
        if len(parts) != 4 or parts[0] != "containerLogs":
            self._text(404, "404 page not found")
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self._logs(parts[1], parts[2], parts[3], q)

    def _logs(self, ns: str, name: str, container: str, q: dict[str, str]) -> None:
        ep = self.server.endpoint
        hub = ep.logs
        pod = ep.find_pod(ns, name)
        if pod is None:
            self._text(404, f'pod "{name}" in namespace "{ns}" not found')  # the kubelet's wording
            return
        runs = hub.runs(ns, name, pod["metadata"]["uid"], container)
        previous = _true(q.get("previous"))
        if previous:
            if len(runs) < 2:
                self._text(400, f'previous terminated container "{container}" in pod "{name}" not found')
                return
            log = runs[-2]
        else:
            if not runs:
                self._text(400, waiting_message(pod, container, name))
                return
            log = runs[-1]
        follow = _true(q.get("follow")) and not previous
        timestamps = _true(q.get("timestamps"))
        tail = int(q["tailLines"]) if (q.get("tailLines") or "").lstrip("-").isdigit() else None
        since = float(q["sinceSeconds"]) if q.get("sinceSeconds") else None
        limit = int(q["limitBytes"]) if q.get("limitBytes") else None

        def render(lines: list[tuple[float, bytes]]) -> bytes:
            return b"".join((rfc3339nano(t).encode() + b" " + line) if timestamps else line for t, line in lines)

        with hub.cond:
            lines = list(log.lines)
            cursor = len(log.lines)
        if since is not None:
            lines = [ln for ln in lines if ln[0] >= time.time() - since]
        if tail is not None and tail >= 0:
            lines = lines[-tail:] if tail else []
        data = render(lines)[:limit] if limit is not None else render(lines)
        if not follow:
            self._bytes(data)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        sent = 0
        try:
            self._chunk(data)
            sent += len(data)
            while not ep.stopping.is_set() and (limit is None or sent < limit):
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
                    data = data[: max(0, limit - sent)]
                self._chunk(data)
                sent += len(data)
        finally:
            with contextlib.suppress(OSError):
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

    def _bytes(self, data: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()


def waiting_message(pod: dict[str, Any], container: str, name: str) -> str:
    """The kubelet's answer for a container that has not run yet (as the HTTP stand-in words it)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container and "waiting" in (status.get("state") or {}):
            reason = status["state"]["waiting"].get("reason") or "ContainerCreating"
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                return f'container "{container}" in pod "{name}" is waiting to start: trying and failing to pull image'
            return f'container "{container}" in pod "{name}" is waiting to start: {reason}'
    return f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating'
