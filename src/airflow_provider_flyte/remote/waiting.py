"""One waiting task's view of the shared watches: its job's object and pods, and a wake-up on every change.

:func:`job_view` subscribes a task to the :class:`~airflow_provider_flyte.remote.shared_watch.SharedWatch`
of its job's kind in its namespace and (when the job has a pod selector) to the shared watch of
the provider's pods there. Its first look GETs the job once (a job created an instant before
the shared watch saw it still counts as existing; a 403 on get fails at once); from then on it
reads the shared caches and makes no request of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow_provider_flyte.remote.jobs import (
    JobRef,
    KubernetesJobError,
    api_status,
    look_retry_delay,
    transient_look_error,
)
from airflow_provider_flyte.remote.shared_watch import (
    LIST_TIMEOUT_S,
    POD_SELECTOR,
    UNSEEN_RECHECK_S,
    SharedWatch,
    WatchHub,
    WatchKey,
    hub,
    labels_match,
    refusal,
)


class JobView:
    """What one waiting task sees; :meth:`look` is cheap (the shared caches), :meth:`changed` waits for news."""

    def __init__(self, ref: JobRef, watches: WatchHub, jobs: SharedWatch, pods: SharedWatch | None,
                 wake: asyncio.Event) -> None:
        self.ref, self.hub, self.jobs, self.pods, self.wake = ref, watches, jobs, pods, wake
        self._seen_in_cache = False
        self._got: dict[str, Any] | None = None
        self._got_at: float | None = None

    async def _get(self) -> dict[str, Any] | None:
        from kubernetes_asyncio import client

        manifest = self.ref.manifest
        try:
            obj = await client.CustomObjectsApi(self.jobs.client).get_namespaced_custom_object(
                manifest.GROUP, manifest.VERSION, self.ref.namespace, manifest.PLURAL, self.ref.name,
                _request_timeout=LIST_TIMEOUT_S)
        except Exception as exc:
            status = api_status(exc)
            if status == 404:
                return None
            if status == 403:
                raise refusal("get", manifest.PLURAL, self.ref.namespace, self.ref.conn_id, exc) from exc
            raise
        return self._mine(obj)

    def _mine(self, obj: dict[str, Any] | None) -> dict[str, Any] | None:
        """``obj`` unless the name now belongs to another object (another uid, apache/airflow#71743): gone then."""
        if obj is not None and self.ref.uid and (obj.get("metadata") or {}).get("uid") != self.ref.uid:
            return None
        return obj

    async def get(self) -> dict[str, Any] | None:
        """A fresh GET of the job (``None``: it does not exist), also kept as what the cache has not shown yet."""
        self._got, self._got_at = await self._get(), time.monotonic()
        return self._got

    async def look(self) -> tuple[dict[str, Any] | None, list[Any]]:
        """``(object or None when deleted, the job's pods)``; raises the shared watch's error if it failed."""
        now = time.monotonic()
        if not self._seen_in_cache and (self._got_at is None or now - self._got_at >= UNSEEN_RECHECK_S):
            self._got, self._got_at = await self._get(), now
        for shared in (self.jobs, self.pods):
            if shared is not None:
                await shared.synced.wait()
                if shared.error is not None:
                    raise shared.error
        obj = self._mine(self.jobs.objects.get(self.ref.name))
        if obj is not None:
            self._seen_in_cache = True
        elif not self._seen_in_cache:
            obj = self._got  # not in the cache yet: what the GET said
        pods = [] if self.pods is None else [
            p for p in self.pods.objects.values() if labels_match(self.ref.selector, p.metadata.labels)]
        return obj, pods

    async def changed(self, timeout: float) -> None:
        """Until a shared watch saw a change, or ``timeout`` s (deadlines are checked without asking the server)."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.wake.wait(), timeout)
        self.wake.clear()


@contextlib.asynccontextmanager
async def job_view(ref: JobRef) -> AsyncIterator[JobView]:
    """Subscribe to the shared watches ``ref`` needs for as long as the block runs."""
    manifest = ref.manifest
    watches = hub()
    wake = asyncio.Event()
    jobs = await watches.acquire(WatchKey(ref.conn_id, ref.namespace, manifest.GROUP, manifest.VERSION,
                                          manifest.PLURAL), wake)
    pods: SharedWatch | None = None
    try:
        if ref.selector:
            pods = await watches.acquire(WatchKey(ref.conn_id, ref.namespace, "", "v1", "pods", POD_SELECTOR), wake)
        yield JobView(ref, watches, jobs, pods, wake)
    finally:
        with contextlib.suppress(Exception):
            if pods is not None:
                await watches.release(pods, wake)
        await watches.release(jobs, wake)


async def wait_for_final(ref: JobRef, *, poll_interval: float, startup_timeout: float, started_at: float,
                         deadline: float | None, log: Any) -> dict[str, Any]:
    """Wait on the shared watches until :func:`~airflow_provider_flyte.remote.watch.evaluate` gives a final event.

    The subscription ends before the event is returned (the caller yields it with nothing held open).
    A failure read from the pods or from the object's absence is confirmed by a fresh GET of the job
    first: two watches have no order between them, and a job's own end wins over its pods' state.
    Transient API answers to the GET are retried (:func:`~airflow_provider_flyte.remote.jobs.transient_look_error`);
    a :class:`KubernetesJobError` (a refusal, a shared watch that gave up) is final at once.
    """
    from airflow_provider_flyte.remote.queueing import QueueWait
    from airflow_provider_flyte.remote.watch import evaluate

    transient = 0
    queued = QueueWait(ref, created=started_at, log=log)  # a Kueue queue: startup counts from admission
    async with job_view(ref) as view:
        while True:
            try:
                obj, pods = await view.look()
                # evaluate() counts in one clock: seconds since the job was created (or admitted by Kueue)
                now = time.time()
                since, final = queued.look(obj, now)
                final = final or evaluate(ref, obj, pods, started=since, now=now,
                                          startup_timeout=startup_timeout, deadline=deadline)
                if final is not None and final["status"] == "failed" and (
                        obj is None or not ref.manifest.job_state(obj).done):
                    obj, now = await view.get(), time.time()
                    since, final = queued.look(obj, now)
                    final = final or evaluate(ref, obj, pods, started=since, now=now,
                                              startup_timeout=startup_timeout, deadline=deadline)
                transient = 0
            except Exception as exc:
                if not isinstance(exc, KubernetesJobError) and transient_look_error(exc, transient):
                    transient += 1
                    log.warning("Kubernetes API answered %s for %s; retrying", api_status(exc) or exc, ref.describe())
                    await asyncio.sleep(look_retry_delay(transient, poll_interval))
                    continue
                return {"status": "failed", "message": f"cannot read {ref.describe()}: {exc}", "job": ref.to_dict()}
            if final is not None:
                return final
            await view.changed(poll_interval)  # a change seen by a shared watch, or the next deadline check


__all__ = ["JobView", "job_view", "wait_for_final"]
