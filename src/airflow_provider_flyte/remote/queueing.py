"""Waiting in a Kueue queue: "queued in <queue>", "admitted after N s", the queue timeout.

A job created for a queue (the ``kueue.x-k8s.io/queue-name`` label, :mod:`~airflow_provider_flyte.manifests.kueue`)
stays suspended until Kueue admits it. :class:`QueueWait` follows that from the object alone, look after
look, for the two waiting paths (the worker's :func:`~airflow_provider_flyte.remote.watch.wait` and the
triggerer's :func:`~airflow_provider_flyte.remote.waiting.wait_for_final`): while the object is suspended
the startup timeout is not counted (it starts at admission); a job never admitted within the queue
timeout ends with a failed event naming the queue (the caller's :func:`~airflow_provider_flyte.remote.watch.finish`
deletes it, never keeps it: a kept queued job would run once admitted). A job that Kueue suspends again
(preemption) is queued again, and its queue timeout starts over.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.manifests.kueue import queue_of, suspended
from airflow_provider_flyte.remote.jobs import JobRef

#: The key of a final event for a job that its queue never admitted (its object is deleted, never kept).
NOT_ADMITTED = "not_admitted"


class QueueWait:
    """One waiting task's view of its job's admission; ``created`` and every ``now`` in one clock."""

    def __init__(self, ref: JobRef, *, created: float, log: Any) -> None:
        self.ref, self.log = ref, log
        self.created = created
        self.queued_since: float | None = None
        self.admitted_at: float | None = None

    def look(self, obj: Mapping[str, Any] | None, now: float) -> tuple[float, dict[str, Any] | None]:
        """``(when the startup timeout starts, a final event or None)`` for the object as it is now."""
        queue = queue_of(obj)
        if not queue or obj is None or self.ref.manifest.job_state(obj).done:
            return (self.created if self.admitted_at is None else self.admitted_at), None
        if suspended(obj):
            if self.queued_since is None:
                self.queued_since = self.created if self.admitted_at is None else now
                self.admitted_at = None
                self.log.info("%s queued in Kueue queue %r: waiting for admission (the startup timeout starts "
                              "then)", self.ref.describe(), queue)
            waited = now - self.queued_since
            timeout = self.ref.queue_timeout
            if timeout and waited > timeout:
                return now, {"status": "failed", NOT_ADMITTED: True, "job": self.ref.to_dict(),
                             "message": f"not admitted by Kueue queue {queue!r} within {timeout:g} s (its queue "
                                        "timeout): check the queue's ClusterQueue quota, or raise kueue_timeout"}
            return now, None  # not admitted: the startup timeout has not started
        if self.admitted_at is None:
            self.admitted_at = now
            since = self.created if self.queued_since is None else self.queued_since
            self.queued_since = None
            self.log.info("%s admitted after %.1f s in Kueue queue %r", self.ref.describe(), now - since, queue)
        return self.admitted_at, None


__all__ = ["NOT_ADMITTED", "QueueWait"]
