"""Raw JSON requests to a real API server (``RemoteStore``'s transport), its errors as ``ApiError``."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import urllib3

from tests.support.k8s.store import ApiError, Resource


class Http:
    """Raw JSON requests to an API server with a ``kubernetes.client.ApiClient``'s configuration."""

    def __init__(self, api_client: Any) -> None:
        cfg = api_client.configuration
        self.base = cfg.host.rstrip("/")
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=16, cert_reqs="CERT_REQUIRED",
                                        ca_certs=cfg.ssl_ca_cert, cert_file=cfg.cert_file, key_file=cfg.key_file)
        self.headers = {"Accept": "application/json"}
        for auth in cfg.auth_settings().values():
            if auth.get("in") == "header" and auth.get("value"):
                self.headers[auth["key"]] = auth["value"]

    def request(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None, *,
                stream: bool = False, timeout: float | None = 30) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        resp = self.pool.request(method, url, body=data, headers=headers, preload_content=not stream,
                                 timeout=urllib3.Timeout(connect=10, read=timeout), retries=False)
        if resp.status >= 400:
            raw = resp.data if not stream else resp.read()
            resp.release_conn()
            raise api_error(resp.status, raw, dict(resp.headers))
        if stream:
            return resp
        return json.loads(resp.data) if resp.data else None


def api_error(code: int, raw: bytes, headers: dict[str, str] | None = None) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        return ApiError(int(body.get("code") or code), str(body.get("reason") or ""), str(body.get("message") or ""),
                        body.get("details"), headers)
    return ApiError(code, "Unknown", raw.decode("utf-8", "replace")[:500], None, headers)


def path_of(res: Resource, ns: str | None, name: str | None = None, sub: str | None = None) -> str:
    out = f"/apis/{res.group}/{res.version}" if res.group else "/api/v1"
    if res.namespaced and ns:
        out += f"/namespaces/{ns}"
    out += f"/{res.plural}"
    if name:
        out += f"/{name}"
    if sub:
        out += f"/{sub}"
    return out
