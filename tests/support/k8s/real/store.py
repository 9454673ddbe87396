""":class:`RemoteStore`: the simulator's store interface (:class:`tests.support.k8s.store.Store`) on a real API server.

The controllers and the kubelet of :mod:`tests.support.k8s.simulator` read and write through a small
interface (``resource``, ``create``, ``delete``, ``list``, ``mutate``, ``try_get``, ``add_listener``,
``all_objects``). Here it is served by a real API server, as a real controller is served:

- reads (``list``, ``try_get``, ``all_objects``) come from an informer cache: one list, then one
  watch per resource kind (relist on ``410 Gone``, reconnect on a dropped stream), every event
  also handed to the listeners (the simulator's loop wakes on them) and kept in a history
  (``events_after``, for tests that look at every version an object had);
- writes go to the server (``create``; ``mutate`` = get, edit, replace with the
  ``resourceVersion``, again on ``409 Conflict``; the status through ``/status`` when the kind has
  that subresource; ``spec.nodeName`` of a pod through ``pods/binding``, as a scheduler does it),
  and their answer goes into the cache at once, so a controller reads its own writes;
- errors are :class:`~tests.support.k8s.store.ApiError` with the server's ``Status``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from tests.support.k8s.real.http import Http, api_error, path_of
from tests.support.k8s.store import ApiError, Resource, WatchEvent, field_matcher, label_matcher


def _rv(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (KeyError, ValueError, TypeError):
        return 0


Key = tuple[str, str, str, str]


class RemoteStore:
    """The store interface over a real API server (see the module's docstring).

    :param api_client: a ``kubernetes.client.ApiClient`` (the admin's: the controllers' identity).
    :param resources: the kinds the controllers use; each must exist on the server.
    """

    def __init__(self, api_client: Any, resources: Iterable[Resource], *, history: int = 50000) -> None:
        self.http = Http(api_client)
        self.resources: dict[tuple[str, str], Resource] = {r.key: r for r in resources}
        self.cond = threading.Condition(threading.RLock())
        self.closed = False
        self._objects: dict[Key, dict[str, Any]] = {}
        self._gone: dict[Key, int] = {}  # deleted keys -> the last resourceVersion seen (older events ignored)
        self._history: list[WatchEvent] = []
        self._history_max = history
        self._listeners: list[Callable[[WatchEvent], None]] = []
        self._rv = 0
        self._threads: list[threading.Thread] = []
        self._streams: dict[tuple[str, str], Any] = {}
        self.relists = 0  # how many times a watch had to start over (410 Gone)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> RemoteStore:
        """List every kind (the cache is complete when this returns), then watch each."""
        starts = {res.key: self._relist(res) for res in self.resources.values()}
        for res in self.resources.values():
            thread = threading.Thread(target=self._watch_loop, args=(res, starts[res.key]), daemon=True,
                                      name=f"remote-store-watch-{res.plural}")
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        with self.cond:
            self.closed = True
            streams = list(self._streams.values())
            self.cond.notify_all()
        for resp in streams:
            with contextlib.suppress(Exception):
                resp.shutdown()
        for thread in self._threads:
            thread.join(5)
        self.http.pool.clear()

    # ------------------------------------------------------------------ the table
    def resource(self, group: str, plural: str) -> Resource:
        try:
            return self.resources[(group, plural)]
        except KeyError:
            raise ApiError(404, "NotFound", "the server could not find the requested resource") from None

    def by_kind(self, api_version: str, kind: str) -> Resource:
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        for res in self.resources.values():
            if res.group == group and res.kind == kind:
                return res
        raise KeyError((api_version, kind))

    # ------------------------------------------------------------------ the cache and its watches
    @staticmethod
    def _k(res: Resource, ns: str | None, name: str) -> Key:
        return (res.group, res.plural, (ns or "") if res.namespaced else "", name)

    def _key_of(self, res: Resource, obj: dict[str, Any]) -> Key:
        meta = obj["metadata"]
        return self._k(res, meta.get("namespace"), meta["name"])

    def _relist(self, res: Resource) -> int:
        body = self.http.request("GET", path_of(res, None))
        rv = int(body["metadata"]["resourceVersion"])
        items = body.get("items") or []
        for item in items:
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        with self.cond:
            fresh = {self._key_of(res, o): o for o in items}
            for key in [k for k in self._objects if k[:2] == res.key and k not in fresh]:
                old = self._objects.pop(key)
                self._gone[key] = rv
                self._note(WatchEvent(rv, "DELETED", res, old))
            for key, obj in fresh.items():
                old = self._objects.get(key)
                if old is None or _rv(old) < _rv(obj):
                    self._objects[key] = obj
                    self._gone.pop(key, None)
                    self._note(WatchEvent(_rv(obj), "ADDED" if old is None else "MODIFIED", res, obj))
            self._rv = max(self._rv, rv)
        return rv

    def _watch_loop(self, res: Resource, rv: int) -> None:
        backoff = 0.1
        while not self.closed:
            try:
                if rv < 0:
                    self.relists += 1
                    rv = self._relist(res)
                rv = self._watch_once(res, rv)
                backoff = 0.1
            except ApiError as err:
                if err.code == 410:
                    rv = -1
                    continue
                time.sleep(backoff)
                backoff = min(2.0, backoff * 2)
            except Exception:  # noqa: BLE001 - a dropped stream: reconnect from the last resourceVersion
                if self.closed:
                    return
                time.sleep(backoff)
                backoff = min(2.0, backoff * 2)

    def _watch_once(self, res: Resource, rv: int) -> int:
        resp = self.http.request("GET", path_of(res, None), query={
            "watch": "1", "resourceVersion": str(rv), "allowWatchBookmarks": "true", "timeoutSeconds": "240"},
            stream=True, timeout=300)
        with self.cond:
            if self.closed:
                resp.release_conn()
                return rv
            self._streams[res.key] = resp
        try:
            buf = b""
            for chunk in resp.stream(65536, decode_content=True):
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    if line.strip():
                        rv = self._on_event(res, json.loads(line), rv)
        finally:
            with self.cond:
                self._streams.pop(res.key, None)
            with contextlib.suppress(Exception):
                resp.release_conn()
        return rv

    def _on_event(self, res: Resource, event: dict[str, Any], rv: int) -> int:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            raise api_error(int(obj.get("code") or 500), json.dumps(obj).encode())
        new_rv = _rv(obj)
        if kind == "BOOKMARK":
            with self.cond:
                self._rv = max(self._rv, new_rv)
            return new_rv
        obj.setdefault("apiVersion", res.api_version)
        obj.setdefault("kind", res.kind)
        with self.cond:
            key = self._key_of(res, obj)
            if kind == "DELETED":
                if self._objects.pop(key, None) is not None or key not in self._gone:
                    pass
                self._gone[key] = max(self._gone.get(key, 0), new_rv)
            else:
                cur = self._objects.get(key)
                if (cur is None or _rv(cur) < new_rv) and self._gone.get(key, 0) < new_rv:
                    self._objects[key] = obj
                    self._gone.pop(key, None)
            self._rv = max(self._rv, new_rv)
            self._note(WatchEvent(new_rv, str(kind), res, obj))
        return max(rv, new_rv)

    def _note(self, event: WatchEvent) -> None:
        """History + listeners (under the lock)."""
        self._history.append(event)
        if len(self._history) > self._history_max:
            del self._history[: len(self._history) - self._history_max]
        for fn in list(self._listeners):
            fn(event)
        self.cond.notify_all()

    def _remember(self, res: Resource, obj: dict[str, Any]) -> None:
        """A write's answer into the cache (read-your-writes for the controllers)."""
        with self.cond:
            key = self._key_of(res, obj)
            cur = self._objects.get(key)
            if (cur is None or _rv(cur) < _rv(obj)) and self._gone.get(key, 0) < _rv(obj):
                self._objects[key] = copy.deepcopy(obj)
                self._gone.pop(key, None)

    def add_listener(self, fn: Callable[[WatchEvent], None]) -> None:
        """``fn(event)`` is called, under the cache lock, after every watch event (keep it short)."""
        with self.cond:
            self._listeners.append(fn)

    @property
    def resource_version(self) -> int:
        """The server's current resourceVersion (etcd's revision)."""
        body = self.http.request("GET", "/api/v1/namespaces", query={"limit": "1"})
        return int(body["metadata"]["resourceVersion"])

    def catch_up(self, timeout: float = 2.0) -> bool:
        """Wait until the watches have delivered the server's current revision (True), at most ``timeout`` s:
        what a client wrote before this call is then in the cache (all kinds that change are watched)."""
        target = self.resource_version
        deadline = time.monotonic() + timeout
        with self.cond:
            while self._rv < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(0.1, left))
        return True

    def events_after(self, rv: int) -> list[WatchEvent]:
        """Watch events newer than ``rv``, once the watches caught up (:meth:`catch_up`)."""
        self.catch_up()
        with self.cond:
            return sorted((e for e in self._history if e.rv > rv), key=lambda e: e.rv)

    # ------------------------------------------------------------------ reads (the cache)
    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        return self.http.request("GET", path_of(res, ns, name))  # type: ignore[no-any-return]

    def try_get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any] | None:
        with self.cond:
            obj = self._objects.get(self._k(res, ns, name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, res: Resource, ns: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict[str, Any]], int]:
        labels_ok, fields_ok = label_matcher(label_selector), field_matcher(field_selector)
        with self.cond:
            items = [copy.deepcopy(o) for (g, p, n, _), o in sorted(self._objects.items())
                     if (g, p) == res.key and (not ns or not res.namespaced or n == ns)
                     and labels_ok(o["metadata"].get("labels") or {}) and fields_ok(o)]
            return items, self._rv

    def all_objects(self, *, fresh: bool = True) -> list[tuple[Resource, dict[str, Any]]]:
        """Every cached object (``fresh``: once the watches caught up, see :meth:`catch_up`)."""
        if fresh:
            self.catch_up()
        with self.cond:
            return [(self.resources[(g, p)], copy.deepcopy(o)) for (g, p, _, _), o in sorted(self._objects.items())]

    # ------------------------------------------------------------------ writes (the server)
    def create(self, res: Resource, ns: str | None, body: dict[str, Any], *, field_validation: str | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        """POST (``field_validation`` is not sent: a 1.20 server drops unknown fields, always)."""
        body = copy.deepcopy(body)
        body.setdefault("apiVersion", res.api_version)
        body.setdefault("kind", res.kind)
        ns = ns or body.get("metadata", {}).get("namespace")
        obj = self.http.request("POST", path_of(res, ns), body, {"dryRun": "All"} if dry_run else None)
        if not dry_run:
            self._remember(res, obj)
        return obj  # type: ignore[no-any-return]

    def mutate(self, res: Resource, ns: str | None, name: str, fn: Callable[[dict[str, Any]], Any], *,
               subresource: str | None = None) -> dict[str, Any] | None:
        """Read-modify-write: get, ``fn`` edits a copy, replace with its ``resourceVersion`` (again on a
        409 conflict). Returns the stored object, or None when it does not exist (any more)."""
        for _ in range(20):
            try:
                cur = self.get(res, ns, name)
            except ApiError as err:
                if err.code == 404:
                    return None
                raise
            new = copy.deepcopy(cur)
            fn(new)
            if new == cur:
                return cur
            node = (new.get("spec") or {}).get("nodeName")
            if res.plural == "pods" and node and node != (cur.get("spec") or {}).get("nodeName"):
                self._bind(ns, cur, node)
                continue  # then the rest of the edit on the bound pod
            try:
                out = self.http.request("PUT", path_of(res, ns, name, subresource if subresource in res.subresources
                                                       else None), new)
            except ApiError as err:
                if err.code == 409 and err.reason == "Conflict":
                    continue
                if err.code == 404:
                    return None
                raise
            self._remember(res, out)
            return out  # type: ignore[no-any-return]
        raise ApiError(409, "Conflict", f"{res.plural} {ns}/{name}: still conflicting after 20 tries")

    def _bind(self, ns: str | None, pod: dict[str, Any], node: str) -> None:
        meta = pod["metadata"]
        body = {"apiVersion": "v1", "kind": "Binding",
                "metadata": {"name": meta["name"], "namespace": ns, "uid": meta["uid"]},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
        try:
            self.http.request("POST", f"/api/v1/namespaces/{ns}/pods/{meta['name']}/binding", body)
        except ApiError as err:
            if err.code != 409:  # already bound (a retry)
                raise

    def delete(self, res: Resource, ns: str | None, name: str, *, propagation: str | None = None,
               preconditions: dict[str, Any] | None = None, grace_period: int | None = None) -> dict[str, Any]:
        opts: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            opts["propagationPolicy"] = propagation
        if preconditions:
            opts["preconditions"] = preconditions
        if grace_period is not None:
            opts["gracePeriodSeconds"] = grace_period
        with self.cond:
            last = self._objects.get(self._k(res, ns, name))
        out = self.http.request("DELETE", path_of(res, ns, name), opts)
        try:
            now = self.get(res, ns, name)
        except ApiError as err:
            if err.code != 404:
                raise
            with self.cond:
                key = self._k(res, ns, name)
                gone = self._objects.pop(key, None) or last
                self._gone[key] = max(self._gone.get(key, 0), _rv(gone) if gone else 0,
                                      _rv(out) if isinstance(out, dict) and "metadata" in out else 0)
        else:
            self._remember(res, now)
        return out  # type: ignore[no-any-return]
