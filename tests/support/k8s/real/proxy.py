"""A request-recording, fault-injecting HTTPS proxy in front of a real API server.

The provider under test connects through it (the simulated controllers go to the API server
directly, so the log holds only the client's requests). It has the HTTP stand-in's test API
(:class:`tests.support.k8s.server.KubeApiServer`): ``request_log`` / ``count`` / ``clear_requests``
(each request's Kubernetes verb, resource, namespace, name and answer) and ``inject_fault`` /
``clear_faults`` (the next matching requests answered with a ``Status`` of that code, ``Retry-After``
included: what a real server cannot be made to do on demand). Everything else passes through
unchanged, the caller's bearer token included (RBAC is the real server's), streams (watch,
``follow`` logs) chunk by chunk.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.k8s.real.tls import self_signed, server_context
from tests.support.k8s.server import Fault, RequestJournal, RequestRecord

_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host"}


def classify(method: str, path: str, query: dict[str, str]) -> tuple[str, str | None, str | None, str | None]:
    """``(verb, resource, namespace, name)`` of a request, as the API server's request info sees it."""
    parts = [urllib.parse.unquote(p) for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        rest = parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        rest = parts[3:]
    else:
        return ("discovery" if method == "GET" else "unknown"), None, None, None
    if not rest:
        return "discovery", None, None, None
    ns = None
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) > 2 else "")
    name = rest[1] if len(rest) > 1 else None
    watch = query.get("watch") in ("true", "1", "True")
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, "unknown")
    if method == "GET":
        verb = "get" if resource.endswith("/log") else "watch" if watch else "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    return verb, resource, ns, name


class KubeApiProxy(RequestJournal):
    """HTTPS on ``127.0.0.1`` (its own certificate) to ``upstream`` (verified with ``upstream_ca``)."""

    def __init__(self, upstream: str, upstream_ca: str | Path, directory: Path) -> None:
        split = urllib.parse.urlsplit(upstream)
        self.upstream_host, self.upstream_port = split.hostname or "127.0.0.1", split.port or 443
        self.upstream_ctx = ssl.create_default_context(cafile=str(upstream_ca))
        self.directory = directory
        self.cert, key = self_signed(directory, "proxy")
        self.requests: list[RequestRecord] = []
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), self)
        self._httpd.socket = server_context(self.cert, key).wrap_socket(self._httpd.socket, server_side=True)
        self._thread: threading.Thread | None = None

    def start(self) -> KubeApiProxy:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="k8s-api-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        with self._lock:
            socks = list(self._sockets)
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], proxy: KubeApiProxy) -> None:
        self.proxy = proxy
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def setup(self) -> None:
        super().setup()
        with self.server.proxy._lock:
            self.server.proxy._sockets.add(self.connection)

    def finish(self) -> None:
        upstream = getattr(self, "_upstream", None)
        if upstream is not None:
            upstream.close()
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.proxy._lock:
            self.server.proxy._sockets.discard(self.connection)

    def do_GET(self) -> None:  # noqa: N802
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

    def _handle(self) -> None:
        proxy = self.server.proxy
        url = urllib.parse.urlsplit(self.path)
        query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        verb, resource, ns, name = classify(self.command, url.path, query)
        rec = RequestRecord(verb, self.command, url.path, query, 0, resource, ns, name)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        fault = proxy.take_fault(rec) if resource else None
        if fault is not None:
            err = fault.error(rec)
            rec.status, rec.injected = err.code, True
            proxy.record(rec)
            data = json.dumps(err.status()).encode()
            self.send_response(err.code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in err.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        streaming = verb == "watch" or (verb == "get" and query.get("follow") in ("true", "1", "True"))
        conn = getattr(self, "_upstream", None) if not streaming else None
        if conn is None:
            conn = http.client.HTTPSConnection(proxy.upstream_host, proxy.upstream_port, context=proxy.upstream_ctx,
                                               timeout=3600)
        try:
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()  # a kept connection the API server closed meanwhile: once more on a new one
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
            rec.status = resp.status
            if not streaming or resp.status != 200:
                data = resp.read()
                if verb == "create" and resp.status == 201 and rec.name is None:
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        rec.name = json.loads(data)["metadata"]["name"]
                self._answer(resp, data, rec)
                return
            proxy.record(rec)
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in _HOP and k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.close_connection = True
            try:
                while not proxy.stopping.is_set():
                    chunk = resp.read1(65536)
                    if not chunk:
                        break
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    self.wfile.flush()
            finally:
                with contextlib.suppress(OSError):
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        except OSError as exc:
            if rec.status == 0:
                rec.status = 502
                proxy.record(rec)
                with contextlib.suppress(OSError):
                    data = json.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 502,
                                       "reason": "ServiceUnavailable", "message": f"proxy: {exc!r}"}).encode()
                    self.send_response(502)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
        finally:
            if streaming or self.close_connection:
                conn.close()
                self._upstream = None
            else:
                self._upstream = conn  # kept for this client connection's next request

    def _answer(self, resp: http.client.HTTPResponse, data: bytes, rec: RequestRecord) -> None:
        self.server.proxy.record(rec)  # in the log before the answer leaves
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in _HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
