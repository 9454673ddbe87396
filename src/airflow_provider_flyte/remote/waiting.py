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

from airflow_provider_flyte.remote.jobs import JobRef, api_status
from airflow_provider_flyte.remote.shared_watch import (
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
                manifest.GROUP, manifest.VERSION, self.ref.namespace, manifest.PLURAL, self.ref.name)
        except Exception as exc:
            status = api_status(exc)
            if status == 404:
                return None
            if status == 403:
                raise refusal("get", manifest.PLURAL, self.ref.namespace, self.ref.conn_id, exc) from exc
            raise
        return obj  # type: ignore[no-any-return]

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
        obj = self.jobs.objects.get(self.ref.name)
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


__all__ = ["JobView", "job_view"]
