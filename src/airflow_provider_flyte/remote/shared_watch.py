"""One watch per (connection, namespace, kind) per event loop, shared by every task waiting there.

A task that waits for its job (the trigger, in the triggerer's event loop) does not poll: it
subscribes to a :class:`SharedWatch` of its job's kind in its namespace, and (when the job has
pods) to one of the provider's pods there (label ``app.kubernetes.io/managed-by``). Each
shared watch keeps a cache by LIST then WATCH (``allowWatchBookmarks``, resuming from the
last ``resourceVersion``), relists on ``410 Gone``, reconnects after a dropped stream with a
bounded backoff, and wakes its subscribers on every change. Where the watch verb is refused
(403 on watch) it says so once and falls back to one LIST every :data:`FALLBACK_POLL_S`,
still shared. A 403 on anything else is never retried: every subscriber fails at once with
an error naming the verb, the resource and the namespace.

All watches of one connection share one API client (the cncf provider's ``AsyncKubernetesHook``);
the client and the watches go when their last subscriber leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.remote.jobs import (
    LOOK_RETRY_MAX_S,
    KubernetesJobError,
    api_reason,
    api_status,
    transient_look_error,
)

log = logging.getLogger(__name__)

#: Server-side timeout of one watch request; the watch then resumes from its last ``resourceVersion``.
WATCH_TIMEOUT_S = 290
#: Seconds between two shared LISTs where the watch verb is refused (403 on watch).
FALLBACK_POLL_S = 10.0
#: Seconds a LIST or a job's GET may take (the client sets no limit of its own).
LIST_TIMEOUT_S = 60.0
#: The first pause before a reconnect after an error; it doubles up to ``LOOK_RETRY_MAX_S``.
RECONNECT_FIRST_S = 0.5
#: Seconds between two GETs of a job the cache has not shown yet (a job created just before the watch saw it).
UNSEEN_RECHECK_S = 30.0
POD_SELECTOR = "app.kubernetes.io/managed-by=airflow-provider-flyte"


class KubernetesAccessDenied(KubernetesJobError):
    """The API server refused a verb (403): never retried; the message names verb, resource and namespace."""

    def __init__(self, message: str, verb: str) -> None:
        super().__init__(message)
        self.verb = verb


def refusal(verb: str, resource: str, namespace: str, conn_id: str, exc: BaseException) -> KubernetesAccessDenied:
    return KubernetesAccessDenied(
        f"Kubernetes refused to {verb} {resource} in namespace {namespace!r} (connection {conn_id!r}): "
        f"{api_reason(exc)}. Fix: grant the verb {verb!r} on {resource!r} in that namespace to the identity of the "
        "connection (the Role in docs/kubernetes.md).", verb)


#: The shared watches whose refused watch was logged as a warning already (once per process).
_REFUSED_SAID: set[WatchKey] = set()


@dataclass(frozen=True)
class WatchKey:
    conn_id: str
    namespace: str
    group: str  # "" for pods
    version: str
    plural: str
    selector: str = ""


def _name(obj: Any) -> str:
    return str(obj["metadata"]["name"] if isinstance(obj, dict) else obj.metadata.name)


def labels_match(selector: str, labels: dict[str, str] | None) -> bool:
    """An equality-based label selector (``k=v,k2=v2``, what :func:`~remote.jobs.selector_of` writes)."""
    have = labels or {}
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if have.get(key.strip()) != value.strip():
            return False
    return True


class SharedWatch:
    """A cache of one resource in one namespace, kept by list + watch; subscribers are woken on every change."""

    def __init__(self, key: WatchKey, client: Any) -> None:
        self.key = key
        self.client = client
        self.objects: dict[str, Any] = {}
        self.synced = asyncio.Event()
        self.error: BaseException | None = None
        self.mode = "watch"
        self.resource_version: str | None = None
        self.subscribers: set[asyncio.Event] = set()
        self.task: asyncio.Task[None] | None = None
        self.progressed = False

    # -- the API calls -------------------------------------------------------------------------
    def _list_call(self) -> Any:
        from kubernetes_asyncio import client

        k = self.key
        if not k.group:
            return client.CoreV1Api(self.client).list_namespaced_pod
        custom = client.CustomObjectsApi(self.client)

        async def list_custom(namespace: str, **kwargs: Any) -> Any:
            return await custom.list_namespaced_custom_object(k.group, k.version, namespace, k.plural, **kwargs)
        # Watch finds the watch argument and the return type in the docstring
        list_custom.__doc__ = custom.list_namespaced_custom_object.__doc__
        return list_custom

    async def _relist(self) -> None:
        call = self._list_call()
        # a bounded LIST: kubernetes_asyncio sets no timeout, and a half-open connection would hang every waiter
        kwargs: dict[str, Any] = {"_request_timeout": LIST_TIMEOUT_S}
        if self.key.selector:
            kwargs["label_selector"] = self.key.selector
        try:
            listed = await call(self.key.namespace, **kwargs)
        except Exception as exc:
            raise self._named(exc, "list") from exc
        items = listed["items"] if isinstance(listed, dict) else listed.items
        meta = listed["metadata"] if isinstance(listed, dict) else listed.metadata
        self.resource_version = meta.get("resourceVersion") if isinstance(meta, dict) else meta.resource_version
        self.objects = {_name(o): o for o in items}
        self.progressed = True
        self.synced.set()
        self._notify()

    async def _watch_once(self) -> None:
        from kubernetes_asyncio import watch

        # the client-side timeout must outlast the server's (the cncf client's default is shorter)
        kwargs: dict[str, Any] = {"resource_version": self.resource_version, "allow_watch_bookmarks": True,
                                  "timeout_seconds": WATCH_TIMEOUT_S, "_request_timeout": WATCH_TIMEOUT_S + 30}
        if self.key.selector:
            kwargs["label_selector"] = self.key.selector
        async with watch.Watch() as stream:
            try:
                async for event in stream.stream(self._list_call(), self.key.namespace, **kwargs):
                    kind = event["type"]
                    if kind == "BOOKMARK":
                        self.resource_version = stream.resource_version
                        self.progressed = True
                        continue
                    obj = event["object"]
                    if kind == "DELETED":
                        self.objects.pop(_name(obj), None)
                    else:
                        self.objects[_name(obj)] = obj
                    self.resource_version = stream.resource_version
                    self.progressed = True
                    self._notify()
            except Exception as exc:
                raise self._named(exc, "watch") from exc

    def _named(self, exc: BaseException, verb: str) -> BaseException:
        if api_status(exc) == 403:
            return refusal(verb, self.key.plural, self.key.namespace, self.key.conn_id, exc)
        return exc

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        failures = 0
        while True:
            self.progressed = False  # a LIST or an event since the last failure: the failures are not "in a row"
            try:
                if self.resource_version is None or self.mode == "poll":
                    await self._relist()
                if self.mode == "poll":
                    failures = 0
                    await asyncio.sleep(FALLBACK_POLL_S)
                    continue
                await self._watch_once()  # ends after WATCH_TIMEOUT_S: resume from the last resourceVersion
                failures = 0
            except asyncio.CancelledError:
                raise
            except KubernetesAccessDenied as exc:
                if exc.verb == "watch" and self.mode == "watch":
                    self.mode = "poll"
                    said = self.key in _REFUSED_SAID
                    _REFUSED_SAID.add(self.key)
                    log.log(logging.DEBUG if said else logging.WARNING,
                            "%s; waiting by one shared list every %g s instead", exc, FALLBACK_POLL_S)
                    continue
                self._fail(exc)
                return
            except Exception as exc:
                if api_status(exc) == 410:  # our resourceVersion is older than the server's history: relist
                    log.info("Watch of %s in %s expired (410 Gone): relisting", self.key.plural, self.key.namespace)
                    self.resource_version = None
                    continue
                if self.progressed:
                    failures = 0
                if not transient_look_error(exc, failures):
                    self._fail(KubernetesJobError(
                        f"Cannot watch {self.key.plural} in namespace {self.key.namespace!r} (connection "
                        f"{self.key.conn_id!r}): {api_reason(exc)}"))
                    return
                failures += 1
                delay = min(LOOK_RETRY_MAX_S, RECONNECT_FIRST_S * 2 ** failures)
                log.warning("Watch of %s in %s failed (%s); reconnecting in %g s", self.key.plural,
                            self.key.namespace, api_reason(exc), delay)
                await asyncio.sleep(delay)

    def _fail(self, exc: BaseException) -> None:
        self.error = exc
        self.synced.set()
        self._notify()

    def _notify(self) -> None:
        for event in self.subscribers:
            event.set()


class WatchHub:
    """The shared watches and API clients of one event loop (one per process in the triggerer)."""

    def __init__(self) -> None:
        self.watches: dict[WatchKey, SharedWatch] = {}
        self.clients: dict[str, tuple[Any, contextlib.AsyncExitStack, int]] = {}
        self.lock = asyncio.Lock()

    async def _client(self, conn_id: str) -> Any:
        if conn_id in self.clients:
            client, stack, users = self.clients[conn_id]
            self.clients[conn_id] = (client, stack, users + 1)
            return client
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

        stack = contextlib.AsyncExitStack()
        client = await stack.enter_async_context(AsyncKubernetesHook(conn_id=conn_id).get_conn())
        self.clients[conn_id] = (client, stack, 1)
        return client

    async def _release_client(self, conn_id: str) -> None:
        client, stack, users = self.clients[conn_id]
        if users > 1:
            self.clients[conn_id] = (client, stack, users - 1)
            return
        del self.clients[conn_id]
        await stack.aclose()

    async def acquire(self, key: WatchKey, wake: asyncio.Event) -> SharedWatch:
        async with self.lock:
            shared = self.watches.get(key)
            if shared is None or shared.error is not None:
                shared = SharedWatch(key, await self._client(key.conn_id))
                self.watches[key] = shared
                shared.task = asyncio.ensure_future(shared.run())
            shared.subscribers.add(wake)
            return shared

    async def release(self, shared: SharedWatch, wake: asyncio.Event) -> None:
        async with self.lock:
            shared.subscribers.discard(wake)
            if shared.subscribers:
                return
            if self.watches.get(shared.key) is shared:
                del self.watches[shared.key]
            if shared.task is not None:
                shared.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await shared.task
            await self._release_client(shared.key.conn_id)


_HUBS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, WatchHub] = weakref.WeakKeyDictionary()


def hub() -> WatchHub:
    """This event loop's hub (the triggerer runs one loop: one hub per process)."""
    loop = asyncio.get_running_loop()
    if loop not in _HUBS:
        _HUBS[loop] = WatchHub()
    return _HUBS[loop]


__all__ = ["FALLBACK_POLL_S", "POD_SELECTOR", "KubernetesAccessDenied", "SharedWatch", "WatchHub", "WatchKey", "hub",
           "labels_match", "refusal"]
