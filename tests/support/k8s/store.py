"""The in-memory object store behind :class:`tests.support.k8s.server.KubeApiServer`: Kubernetes semantics.

One store holds every object by ``(group, plural, namespace, name)``. It implements what an
API server and its registry strategies do, as far as a client or an operator can observe it:

- ``metadata``: ``uid``, ``resourceVersion`` (one counter for the whole store, as etcd's
  revision), ``creationTimestamp``, ``generation`` (bumped on spec changes), ``generateName``
  (5 characters from Kubernetes' ``rand.String`` alphabet), name and label-value validation
  (422 ``Invalid``), 409 ``AlreadyExists``, 404 ``NotFound``, 409 ``Conflict`` on a stale
  ``resourceVersion``.
- status subresource: create and writes of the main resource keep the stored ``status``;
  writes to ``/status`` change only ``status``.
- finalizers: delete of an object with finalizers sets ``deletionTimestamp``; the object goes
  when the last finalizer is removed.
- garbage collection: when an object goes, its dependents (``ownerReferences`` to its ``uid``)
  whose owners are all gone are deleted, recursively (``Background`` / ``Foreground``), or lose
  the reference (``Orphan``). The real GC is asynchronous; here it is done before the delete
  returns.
- watch: every change is an event ``(resourceVersion, ADDED|MODIFIED|DELETED, object)`` kept in
  a history, so a watch can resume from a ``resourceVersion`` (410 ``Expired`` when it is older
  than the history).
- CRD admission (:mod:`tests.support.k8s.schema`): defaulting, unknown fields (``fieldValidation``),
  validation, for every resource registered with a schema.

Every object handed in or out is a deep copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.support.k8s import schema as crd_schema


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: tuple[str, ...] = ("status",)
    schema: dict[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``sparkapplications.sparkoperator.k8s.io`` / ``pods``: how error messages name it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)


class ApiError(Exception):
    """A request refused with a Kubernetes ``Status`` (``code``, ``reason``, ``message``, ``details``)."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            out["details"] = self.details
        return out


def not_found(res: Resource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found',
                    {"name": name, "group": res.group, "kind": res.plural})


def already_exists(res: Resource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists',
                    {"name": name, "group": res.group, "kind": res.plural})


def conflict(res: Resource, name: str) -> ApiError:
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    {"name": name, "group": res.group, "kind": res.plural})


def invalid(res: Resource, name: str, causes: list[crd_schema.Cause]) -> ApiError:
    text = ", ".join(f"{c.field}: {c.message}" for c in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    return ApiError(422, "Invalid", f'{res.kind}.{res.group or "core"} "{name}" is invalid: {text}'.replace(".core ", " "),
                    {"name": name, "group": res.group, "kind": res.kind, "causes": [c.as_dict() for c in causes]})


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Kubernetes' util/rand alphabet (no vowels, no ambiguous characters).
_RAND = "bcdfghjklmnpqrstvwxz2456789"


def rand_suffix(n: int = 5) -> str:
    return "".join(random.choice(_RAND) for _ in range(n))


_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUB = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _name_causes(res: Resource, name: str) -> list[crd_schema.Cause]:
    if res.plural == "services":
        ok, what = len(name) <= 63 and bool(_DNS1035.match(name)), (
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
            "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
            "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
    elif res.plural == "namespaces":
        ok, what = len(name) <= 63 and bool(_DNS1123_LABEL.match(name)), (
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
            "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
    else:
        ok, what = len(name) <= 253 and bool(_DNS1123_SUB.match(name)), (
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
    return [] if ok else [crd_schema.Cause("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {what}')]


def _meta_causes(meta: dict[str, Any]) -> list[crd_schema.Cause]:
    causes = []
    for key, value in (meta.get("labels") or {}).items():
        prefix, _, name = key.rpartition("/")
        if not _LABEL_NAME.match(name) or len(name) > 63 or (prefix and not _DNS1123_SUB.match(prefix)):
            causes.append(crd_schema.Cause("FieldValueInvalid", "metadata.labels", f'Invalid value: "{key}": name part '
                                           "must consist of alphanumeric characters, '-', '_' or '.'"))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(crd_schema.Cause(
                "FieldValueInvalid", "metadata.labels", f'Invalid value: "{value}": a valid label must be an empty '
                "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                "alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is "
                "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')" + (" (must be no more than 63 characters)"
                                                                   if isinstance(value, str) and len(value) > 63 else "")))
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            causes.append(crd_schema.Cause("FieldValueInvalid", f"metadata.annotations[{key}]",
                                           "Invalid value: annotation values must be strings"))
    return causes


# ----------------------------------------------------------------------------------------- selectors

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(selector: str | None) -> Callable[[dict[str, str]], bool]:
    """A ``labelSelector`` (equality- and set-based) as a predicate on a labels dict."""
    if not selector:
        return lambda labels: True
    tests: list[Callable[[dict[str, str]], bool]] = []
    for term in _split_selector(selector):
        match = _SET_RE.match(term)
        if match:
            key, op, values = match.group(1), match.group(2), {v.strip() for v in match.group(3).split(",")}
            if op == "in":
                tests.append(lambda lb, k=key, vs=values: k in lb and lb[k] in vs)
            else:
                tests.append(lambda lb, k=key, vs=values: k not in lb or lb[k] not in vs)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda lb, k=key, v=value: lb.get(k) == v)
        elif term.startswith("!"):
            neg = term[1:].strip()
            tests.append(lambda lb, k=neg: k not in lb)
        else:
            tests.append(lambda lb, k=term: k in lb)
    return lambda labels: all(t(labels) for t in tests)


def field_value(obj: dict[str, Any], path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    return "" if cur is None else str(cur)


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """A ``fieldSelector`` (``a.b=v``, ``a.b==v``, ``a.b!=v``, comma-joined) as a predicate on an object."""
    if not selector:
        return lambda obj: True
    tests = []
    for term in _split_selector(selector):
        negate = "!=" in term
        key, value = (s.strip() for s in (term.split("!=", 1) if negate else term.replace("==", "=").split("=", 1)))
        if negate:
            tests.append(lambda o, k=key, v=value: field_value(o, k) != v)
        else:
            tests.append(lambda o, k=key, v=value: field_value(o, k) == v)
    return lambda obj: all(t(obj) for t in tests)


# ------------------------------------------------------------------------------------------ patches

def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


_MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "ports": "containerPort",
               "volumes": "name", "volumeMounts": "mountPath", "conditions": "type", "ownerReferences": "uid",
               "imagePullSecrets": "name", "containerStatuses": "name"}


def strategic_merge_patch(target: Any, patch: Any, key: str = "") -> Any:
    """Approximation of a strategic merge patch: a merge patch whose lists of the well-known core
    fields (containers, env, ports, conditions, ...) are merged by their merge key; ``$patch``
    directives other than ``delete`` on list items are not understood."""
    if isinstance(patch, list) and key in _MERGE_KEYS and isinstance(target, list):
        mkey = _MERGE_KEYS[key]
        out = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or mkey not in item:
                out.append(copy.deepcopy(item))
                continue
            idx = next((i for i, cur in enumerate(out) if isinstance(cur, dict) and cur.get(mkey) == item[mkey]), None)
            if item.get("$patch") == "delete":
                if idx is not None:
                    out.pop(idx)
            elif idx is None:
                out.append(copy.deepcopy(item))
            else:
                out[idx] = strategic_merge_patch(out[idx], item)
        return out
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, value in patch.items():
        if k.startswith("$"):
            continue
        if value is None:
            out.pop(k, None)
        else:
            out[k] = strategic_merge_patch(out.get(k), value, k)
    return out


def _pointer(doc: Any, pointer: str) -> tuple[Any, str | int]:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    if not parts:
        raise ApiError(422, "Invalid", "json patch: the root cannot be a target")
    cur = doc
    for part in parts[:-1]:
        cur = cur[int(part)] if isinstance(cur, list) else cur[part]
    last: str | int = parts[-1]
    if isinstance(cur, list):
        last = len(cur) if last == "-" else int(last)
    return cur, last


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            kind = op["op"]
            if kind in ("move", "copy"):
                src_parent, src_key = _pointer(doc, op["from"])
                value = copy.deepcopy(src_parent[src_key])
                if kind == "move":
                    del src_parent[src_key]
                kind, op = "add", {"path": op["path"], "value": value}
            parent, key = _pointer(doc, op["path"])
            if kind == "add":
                if isinstance(parent, list):
                    parent.insert(int(key), copy.deepcopy(op["value"]))
                else:
                    parent[key] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[key]
            elif kind == "replace":
                parent[key]  # noqa: B018 - must exist
                parent[key] = copy.deepcopy(op["value"])
            elif kind == "test":
                if parent[key] != op["value"]:
                    raise ApiError(422, "Invalid", f"json patch: test failed at {op['path']}")
            else:
                raise ApiError(400, "BadRequest", f"json patch: unknown op {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {exc!r}") from None
    return doc


# --------------------------------------------------------------------------------------------- store

@dataclass
class WatchEvent:
    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    res: Resource
    obj: dict[str, Any]


_CLUSTER_IP = iter(f"10.96.{i // 250}.{i % 250 + 2}" for i in range(1, 60000))


class Store:
    """The objects, their history of changes, and the condition that wakes watchers."""

    def __init__(self, resources: Iterable[Resource], *, field_validation: str = "Strict",
                 history: int = 20000) -> None:
        self.resources: dict[tuple[str, str], Resource] = {r.key: r for r in resources}
        self.field_validation = field_validation
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._rv = 1
        self._history: list[WatchEvent] = []
        self._history_max = history
        self.cond = threading.Condition(threading.RLock())
        self.closed = False
        self._listeners: list[Callable[[WatchEvent], None]] = []
        for ns in ("default", "kube-system", "kube-public"):
            self.create(self.resource("", "namespaces"), None, {"metadata": {"name": ns}})

    # ------------------------------------------------------------------ helpers
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

    @property
    def resource_version(self) -> int:
        return self._rv

    def add_listener(self, fn: Callable[[WatchEvent], None]) -> None:
        """``fn(event)`` is called, under the store lock, after every change (keep it short)."""
        with self.cond:
            self._listeners.append(fn)

    def _emit(self, kind: str, res: Resource, obj: dict[str, Any]) -> None:
        event = WatchEvent(self._rv, kind, res, copy.deepcopy(obj))
        self._history.append(event)
        if len(self._history) > self._history_max:
            del self._history[: len(self._history) - self._history_max]
        for fn in list(self._listeners):
            fn(event)
        self.cond.notify_all()

    def _bump(self, obj: dict[str, Any]) -> None:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)

    def events_after(self, rv: int) -> list[WatchEvent]:
        """History events newer than ``rv``; raises 410 ``Expired`` when ``rv`` is older than the history."""
        with self.cond:
            if self._history and rv < self._history[0].rv - 1:
                raise ApiError(410, "Expired", f"too old resource version: {rv} ({self._history[0].rv - 1})")
            return [e for e in self._history if e.rv > rv]

    def _k(self, res: Resource, ns: str | None, name: str) -> tuple[str, str, str, str]:
        return (res.group, res.plural, (ns or "") if res.namespaced else "", name)

    def _ns_check(self, res: Resource, ns: str | None) -> None:
        if res.namespaced:
            if not ns:
                raise ApiError(400, "BadRequest", "the namespace of the object is required")
            if self._k(self.resource("", "namespaces"), None, ns) not in self._objects:
                raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                               {"name": ns, "kind": "namespaces"})

    # ------------------------------------------------------------------ admission
    def _admit(self, res: Resource, obj: dict[str, Any], field_validation: str | None,
               scope: str | None = None) -> list[str]:
        """Defaulting, unknown fields and validation; returns warnings (dropped fields).

        ``scope``: on an update of the main resource (``"main"``) problems under ``status`` are not
        the request's (it cannot change status; the API server's validation ratcheting lets them
        pass); on a ``/status`` write (``"status"``) only problems under ``status`` count."""
        name = obj["metadata"].get("name") or obj["metadata"].get("generateName") or ""
        causes = _meta_causes(obj["metadata"])
        warnings: list[str] = []
        if res.schema is not None:
            mode = field_validation or self.field_validation
            result = crd_schema.check(res.schema, obj, prune=mode != "Strict")
            if scope is not None:
                def mine(path: str) -> bool:
                    under_status = path == "status" or path.startswith(("status.", "status["))
                    return under_status if scope == "status" else not under_status
                result.unknown = [p for p in result.unknown if mine(p)]
                result.causes = [c for c in result.causes if mine(c.field)]
            if result.unknown and mode == "Strict":
                text = ", ".join(f'unknown field "{p}"' for p in result.unknown)
                raise ApiError(400, "BadRequest", f"{res.kind} in version \"{res.version}\" cannot be handled as a "
                               f"{res.kind}: strict decoding error: {text}")
            if mode == "Warn":
                warnings = [f'unknown field "{p}"' for p in result.unknown]
            causes += result.causes
        if res.plural == "pods":
            causes += _pod_causes(obj)
        if causes:
            raise invalid(res, name, causes)
        return warnings

    # ------------------------------------------------------------------ verbs
    def create(self, res: Resource, ns: str | None, body: dict[str, Any], *, field_validation: str | None = None,
               dry_run: bool = False) -> dict[str, Any]:
        return self.create_ex(res, ns, body, field_validation=field_validation, dry_run=dry_run)[0]

    def create_ex(self, res: Resource, ns: str | None, body: dict[str, Any], *, field_validation: str | None = None,
                  dry_run: bool = False) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        with self.cond:
            if res.namespaced:
                if meta.get("namespace") and ns and meta["namespace"] != ns:
                    raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the "
                                   "namespace sent on the request")
                ns = ns or meta.get("namespace")
                self._ns_check(res, ns)
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            self._check_type(res, obj)
            if not meta.get("name"):
                if meta.get("generateName"):
                    meta["name"] = f"{meta['generateName']}{rand_suffix()}"
                else:
                    raise invalid(res, "", [crd_schema.Cause("FieldValueRequired", "metadata.name",
                                                             "Required value: name or generateName is required")])
            causes = _name_causes(res, meta["name"])
            if causes:
                raise invalid(res, meta["name"], causes)
            key = self._k(res, ns, meta["name"])
            if key in self._objects:
                raise already_exists(res, meta["name"])
            if "status" in res.subresources:
                obj.pop("status", None)
            _defaults(res, obj)
            warnings = self._admit(res, obj, field_validation)
            for drop in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "selfLink"):
                meta.pop(drop, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if "spec" in obj or res.schema is not None:
                meta["generation"] = 1
            if dry_run:
                return copy.deepcopy(obj), warnings
            self._bump(obj)
            self._objects[key] = obj
            self._emit("ADDED", res, obj)
            return copy.deepcopy(obj), warnings

    def _check_type(self, res: Resource, obj: dict[str, Any]) -> None:
        if not obj.get("apiVersion") and not obj.get("kind") and res.group == "":
            obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if obj.get("kind") != res.kind or obj.get("apiVersion") != res.api_version:
            if not obj.get("kind"):
                raise ApiError(400, "BadRequest", "Object 'Kind' is missing in the request body")
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) / kind "
                           f"({obj.get('kind')}) does not match the expected {res.api_version} / {res.kind}")

    def get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any]:
        with self.cond:
            obj = self._objects.get(self._k(res, ns, name))
            if obj is None:
                raise not_found(res, name)
            return copy.deepcopy(obj)

    def try_get(self, res: Resource, ns: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.get(res, ns, name)
        except ApiError:
            return None

    def list(self, res: Resource, ns: str | None = None, *, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict[str, Any]], int]:
        labels_ok, fields_ok = label_matcher(label_selector), field_matcher(field_selector)
        with self.cond:
            items = [copy.deepcopy(o) for (g, p, n, _), o in sorted(self._objects.items())
                     if (g, p) == res.key and (not ns or not res.namespaced or n == ns)
                     and labels_ok(o["metadata"].get("labels") or {}) and fields_ok(o)]
            return items, self._rv

    def all_objects(self) -> list[tuple[Resource, dict[str, Any]]]:
        with self.cond:
            return [(self.resources[(g, p)], copy.deepcopy(o)) for (g, p, _, _), o in sorted(self._objects.items())]

    def update(self, res: Resource, ns: str | None, name: str, body: dict[str, Any], *,
               subresource: str | None = None, field_validation: str | None = None) -> dict[str, Any]:
        with self.cond:
            key = self._k(res, ns, name)
            cur = self._objects.get(key)
            if cur is None:
                raise not_found(res, name)
            new = copy.deepcopy(body)
            meta = new.setdefault("metadata", {})
            want_rv = meta.get("resourceVersion")
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object does not match the name on the URL")
            return self._replace(res, key, cur, new, subresource, field_validation)

    def _replace(self, res: Resource, key: tuple[str, str, str, str], cur: dict[str, Any], new: dict[str, Any],
                 subresource: str | None, field_validation: str | None) -> dict[str, Any]:
        meta = new.setdefault("metadata", {})
        if not new.get("apiVersion"):
            new["apiVersion"] = res.api_version
        if not new.get("kind"):
            new["kind"] = res.kind
        self._check_type(res, new)
        if subresource == "status":
            out = copy.deepcopy(cur)
            if "status" in new:
                out["status"] = new["status"]
            else:
                out.pop("status", None)
            new = out
            self._admit(res, new, field_validation, scope="status")
        else:
            # immutable and server-owned metadata
            for k in ("uid", "creationTimestamp", "namespace", "name", "generation", "deletionTimestamp"):
                if k in cur["metadata"]:
                    meta[k] = cur["metadata"][k]
                else:
                    meta.pop(k, None)
            if "status" in res.subresources:
                if "status" in cur:
                    new["status"] = cur["status"]
                else:
                    new.pop("status", None)
            if cur["metadata"].get("deletionTimestamp"):
                added = set(meta.get("finalizers") or []) - set(cur["metadata"].get("finalizers") or [])
                if added:
                    raise ApiError(422, "Invalid", f'{res.kind} "{meta["name"]}" is invalid: metadata.finalizers: '
                                   "Forbidden: no new finalizers can be added if the object is being deleted")
            if res.plural == "pods" and cur.get("spec", {}).get("containers") != new.get("spec", {}).get("containers"):
                images_only = [{k: v for k, v in c.items() if k != "image"} for c in cur["spec"].get("containers", [])]
                if images_only != [{k: v for k, v in c.items() if k != "image"}
                                   for c in new.get("spec", {}).get("containers", [])]:
                    raise invalid(res, meta["name"], [crd_schema.Cause(
                        "FieldValueForbidden", "spec", "Forbidden: pod updates may not change fields other than "
                        "`spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, "
                        "`spec.tolerations` (only additions to existing tolerations) or "
                        "`spec.terminationGracePeriodSeconds`")])
            self._admit(res, new, field_validation, scope="main")
            if new.get("spec") != cur.get("spec") and "generation" in cur["metadata"]:
                meta["generation"] = cur["metadata"]["generation"] + 1
        if new == cur or _same_but_rv(new, cur):
            return copy.deepcopy(cur)
        self._bump(new)
        self._objects[key] = new
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._finalize(res, key, new, "Background")
        else:
            self._emit("MODIFIED", res, new)
        return copy.deepcopy(new)

    def patch(self, res: Resource, ns: str | None, name: str, patch: Any, content_type: str, *,
              subresource: str | None = None, field_validation: str | None = None) -> dict[str, Any]:
        with self.cond:
            key = self._k(res, ns, name)
            cur = self._objects.get(key)
            if cur is None:
                raise not_found(res, name)
            ctype = content_type.split(";")[0].strip()
            if ctype == "application/merge-patch+json":
                if not isinstance(patch, dict):
                    raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                new = merge_patch(cur, patch)
            elif ctype == "application/json-patch+json":
                if not isinstance(patch, list):
                    raise ApiError(400, "BadRequest", "a json patch must be a JSON array")
                new = json_patch(cur, patch)
            elif ctype == "application/strategic-merge-patch+json":
                if res.schema is not None or res.group not in ("", "apps", "batch"):
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                   "accepted media types include: application/json-patch+json, "
                                   "application/merge-patch+json, application/apply-patch+yaml")
                new = strategic_merge_patch(cur, patch)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"simulator: unsupported patch type {ctype!r} "
                               "(server-side apply is not simulated)")
            want_rv = (patch.get("metadata") or {}).get("resourceVersion") if isinstance(patch, dict) else None
            if want_rv and want_rv != cur["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            new.setdefault("metadata", {})["resourceVersion"] = cur["metadata"]["resourceVersion"]
            return self._replace(res, key, cur, new, subresource, field_validation)

    def mutate(self, res: Resource, ns: str | None, name: str, fn: Callable[[dict[str, Any]], Any], *,
               subresource: str | None = None) -> dict[str, Any] | None:
        """Read-modify-write under the lock (for the simulator): ``fn`` edits a copy in place.
        Returns the stored object, or None when it does not exist (any more)."""
        with self.cond:
            key = self._k(res, ns, name)
            cur = self._objects.get(key)
            if cur is None:
                return None
            new = copy.deepcopy(cur)
            fn(new)
            return self._replace(res, key, cur, new, subresource, "Strict")

    def delete(self, res: Resource, ns: str | None, name: str, *, propagation: str | None = None,
               preconditions: dict[str, Any] | None = None, grace_period: int | None = None) -> dict[str, Any]:
        """Delete (or, for a pod running on a node, start its graceful termination: ``deletionTimestamp``
        is set and the kubelet removes the pod once its containers stopped; ``grace_period=0`` forces)."""
        with self.cond:
            key = self._k(res, ns, name)
            cur = self._objects.get(key)
            if cur is None:
                raise not_found(res, name)
            pre = preconditions or {}
            if pre.get("uid") and pre["uid"] != cur["metadata"]["uid"]:
                raise ApiError(409, "Conflict", f'Precondition failed: UID in precondition: {pre["uid"]}, UID in '
                               f'object meta: {cur["metadata"]["uid"]}')
            if pre.get("resourceVersion") and pre["resourceVersion"] != cur["metadata"]["resourceVersion"]:
                raise conflict(res, name)
            if cur["metadata"].get("finalizers"):
                if not cur["metadata"].get("deletionTimestamp"):
                    new = copy.deepcopy(cur)
                    new["metadata"]["deletionTimestamp"] = now()
                    new["metadata"]["deletionGracePeriodSeconds"] = 0
                    self._bump(new)
                    self._objects[key] = new
                    self._emit("MODIFIED", res, new)
                    return copy.deepcopy(new)
                return copy.deepcopy(cur)
            if self._graceful(res, cur, grace_period):
                return copy.deepcopy(self._terminating(res, key, cur, grace_period))
            if cur["metadata"].get("deletionTimestamp") and res.plural == "pods" and grace_period != 0:
                return copy.deepcopy(cur)  # already terminating
            return copy.deepcopy(self._finalize(res, key, cur, propagation or "Background"))

    @staticmethod
    def _graceful(res: Resource, obj: dict[str, Any], grace_period: int | None) -> bool:
        """A pod bound to a node and not finished terminates gracefully, as the kubelet does it."""
        if res.plural != "pods" or grace_period == 0 or obj["metadata"].get("deletionTimestamp"):
            return False
        if not (obj.get("spec") or {}).get("nodeName"):
            return False
        return (obj.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

    def _terminating(self, res: Resource, key: tuple[str, str, str, str], obj: dict[str, Any],
                     grace_period: int | None) -> dict[str, Any]:
        new = copy.deepcopy(obj)
        new["metadata"]["deletionTimestamp"] = now()
        new["metadata"]["deletionGracePeriodSeconds"] = int(
            grace_period if grace_period is not None else (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        self._bump(new)
        self._objects[key] = new
        self._emit("MODIFIED", res, new)
        return new

    def _finalize(self, res: Resource, key: tuple[str, str, str, str], obj: dict[str, Any],
                  propagation: str) -> dict[str, Any]:
        del self._objects[key]
        self._rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._rv)
        obj["metadata"].setdefault("deletionTimestamp", now())
        self._emit("DELETED", res, obj)
        uid = obj["metadata"]["uid"]
        if res.plural == "namespaces":
            ns = obj["metadata"]["name"]
            for k in [k for k in self._objects if k[2] == ns and self.resources[(k[0], k[1])].namespaced]:
                if k in self._objects:
                    dep_res = self.resources[(k[0], k[1])]
                    dep = self._objects[k]
                    dep["metadata"]["finalizers"] = []
                    self._finalize(dep_res, k, dep, "Background")
        self._collect(uid, propagation)
        return obj

    def _collect(self, owner_uid: str, propagation: str) -> None:
        """Garbage collection of ``owner_uid``'s dependents."""
        live_uids = {o["metadata"]["uid"] for o in self._objects.values()}
        for k, dep in list(self._objects.items()):
            refs = dep["metadata"].get("ownerReferences") or []
            if not any(r.get("uid") == owner_uid for r in refs) or k not in self._objects:
                continue
            dep_res = self.resources[(k[0], k[1])]
            if propagation == "Orphan":
                new = copy.deepcopy(dep)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                self._bump(new)
                self._objects[k] = new
                self._emit("MODIFIED", dep_res, new)
                continue
            if any(r.get("uid") in live_uids for r in refs if r.get("uid") != owner_uid):
                continue  # another owner is still alive
            if self._graceful(dep_res, dep, None):
                self._terminating(dep_res, k, dep, None)
                continue
            if dep["metadata"].get("deletionTimestamp") and dep_res.plural == "pods":
                continue  # already terminating: the kubelet removes it
            if dep["metadata"].get("finalizers"):
                if not dep["metadata"].get("deletionTimestamp"):
                    new = copy.deepcopy(dep)
                    new["metadata"]["deletionTimestamp"] = now()
                    self._bump(new)
                    self._objects[k] = new
                    self._emit("MODIFIED", dep_res, new)
                continue
            self._finalize(dep_res, k, dep, "Background")

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()


def _same_but_rv(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a2, b2 = copy.deepcopy(a), copy.deepcopy(b)
    a2["metadata"].pop("resourceVersion", None)
    b2["metadata"].pop("resourceVersion", None)
    return a2 == b2


def _pod_causes(pod: dict[str, Any]) -> list[crd_schema.Cause]:
    causes = []
    containers = (pod.get("spec") or {}).get("containers")
    if not containers:
        causes.append(crd_schema.Cause("FieldValueRequired", "spec.containers", "Required value"))
    for i, c in enumerate(containers or []):
        if not c.get("name"):
            causes.append(crd_schema.Cause("FieldValueRequired", f"spec.containers[{i}].name", "Required value"))
        if not c.get("image"):
            causes.append(crd_schema.Cause("FieldValueRequired", f"spec.containers[{i}].image", "Required value"))
    policy = (pod.get("spec") or {}).get("restartPolicy")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(crd_schema.Cause("FieldValueNotSupported", "spec.restartPolicy",
                                       f'Unsupported value: "{policy}": supported values: "Always", "OnFailure", "Never"'))
    return causes


def _defaults(res: Resource, obj: dict[str, Any]) -> None:
    """The core types' defaulting that clients can observe."""
    if res.plural == "pods":
        spec = obj.setdefault("spec", {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("enableServiceLinks", True)
        for c in spec.get("initContainers", []) + spec.get("containers", []):
            image = str(c.get("image") or "")
            tag = image.rsplit("/", 1)[-1]
            c.setdefault("imagePullPolicy", "Always" if (":" not in tag or tag.endswith(":latest")) else "IfNotPresent")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            for p in c.get("ports", []):
                p.setdefault("protocol", "TCP")
        obj["status"] = {"phase": "Pending", "qosClass": _qos(spec)}
    elif res.plural == "services":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if spec.get("clusterIP") in (None, ""):
            spec["clusterIP"] = next(_CLUSTER_IP)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        obj["status"] = {"loadBalancer": {}}
    elif res.plural == "namespaces":
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
    elif res.plural == "events":
        obj.setdefault("type", "Normal")
        obj.setdefault("count", 1)


def _qos(spec: dict[str, Any]) -> str:
    containers = spec.get("containers", [])
    if not any((c.get("resources") or {}).get("requests") or (c.get("resources") or {}).get("limits")
               for c in containers):
        return "BestEffort"
    guaranteed = all(
        (c.get("resources") or {}).get("limits", {}).get(r) is not None
        and (c.get("resources") or {}).get("requests", {}).get(r, (c.get("resources") or {})["limits"][r])
        == (c.get("resources") or {})["limits"][r]
        for c in containers for r in ("cpu", "memory"))
    return "Guaranteed" if guaranteed else "Burstable"
