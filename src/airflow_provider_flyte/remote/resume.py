"""Durable reattach (Airflow >= 3.3): the job a try created, kept in ``task_state_store`` and found again by its ``uid``.

Airflow 3.3's durable execution (AIP-103) gives a running task a ``task_state_store`` that outlives the
try. Following ``ResumableJobMixin``'s conventions (one key per operator, a JSON value written right
after the submit and before the wait, read back first thing on a retry; Airflow clears the store when
the task succeeds), the kubernetes placement stores the identity of the object it created:
``{"kind", "name", "namespace", "uid"}`` under :data:`STATE_KEY`. A retry after a worker crash then:

- reattaches to exactly that object while it runs, or after it succeeded (its outcome is read, nothing
  is submitted again: the mixin's "already succeeded");
- creates a new job if the object is gone (404), ended without success (a failed object is deleted
  first, unless it was kept for debugging), or if the name now belongs to a different object (another
  ``uid``: apache/airflow#71743). A stored identity never falls back to the task's labels.

Without a store (Airflow 3.2) or with nothing stored yet (a crash between the create and the write,
the mixin's known window), the placement reattaches by the task's labels as before.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: The ``task_state_store`` key (``ResumableJobMixin.external_id_key``). Renaming it breaks in-flight retries.
STATE_KEY = "flyte_kubernetes_job"
#: Seconds a retry waits for an earlier try's object that is still being deleted.
DELETION_WAIT_S = 60.0
_FIELDS = ("kind", "name", "namespace", "uid")


def task_state_store() -> Any | None:
    """The running task's ``task_state_store`` (Airflow >= 3.3), or ``None`` (3.2, or outside a task)."""
    try:
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:
        return None
    return context.get("task_state_store")  # type: ignore[attr-defined]


def identity(obj: Mapping[str, Any], kind: str) -> dict[str, str]:
    """What the store keeps of a created object."""
    meta = obj["metadata"]
    return {"kind": kind, "name": str(meta["name"]), "namespace": str(meta.get("namespace") or ""),
            "uid": str(meta.get("uid") or "")}


def remember(store: Any, obj: Mapping[str, Any], kind: str, namespace: str) -> None:
    """Write the object's identity; a store that fails only costs durability (a warning, labels remain)."""
    if store is None:
        return
    value = identity(obj, kind)
    value["namespace"] = value["namespace"] or namespace
    try:
        store.set(STATE_KEY, value)
    except Exception as exc:
        log.warning("Could not store %s %s/%s in task_state_store (%s): a retry reattaches by labels instead",
                    kind, value["namespace"], value["name"], exc)
        return
    log.info("Stored %s %s/%s (uid %s) in task_state_store: a retry reattaches to exactly this object",
             kind, value["namespace"], value["name"], value["uid"])


def recall(store: Any, kind: str) -> dict[str, str] | None:
    """The identity an earlier try stored, or ``None`` (nothing stored, malformed, another kind)."""
    if store is None:
        return None
    try:
        stored = store.get(STATE_KEY)
    except Exception as exc:
        log.warning("Could not read task_state_store (%s): reattaching by labels instead", exc)
        return None
    if not stored:
        return None
    if (not isinstance(stored, dict) or any(not isinstance(stored.get(f), str) or not stored.get(f) for f in _FIELDS)
            or stored["kind"] != kind):
        log.warning("task_state_store holds %r under %r, not a %s identity: ignored", stored, STATE_KEY, kind)
        return None
    return {f: stored[f] for f in _FIELDS}


@dataclass(frozen=True)
class Resumed:
    """What a retry does with a stored identity: ``obj`` to reattach to, or ``None`` to create a new job."""

    obj: dict[str, Any] | None
    why: str


def _wait_gone(jobs: Any, name: str, uid: str, what: str, timeout: float = DELETION_WAIT_S) -> None:
    """Wait until ``name`` no longer holds the object ``uid`` (a create before then would get 409 and adopt it)."""
    from airflow_provider_flyte.remote.jobs import KubernetesJobError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        obj = jobs.get(name)
        if obj is None or (obj.get("metadata") or {}).get("uid") != uid:
            return
        time.sleep(1.0)
    raise KubernetesJobError(f"{what} has been deleting for over {timeout:g} s (a finalizer that never "
                             "completes?): the retry cannot create its job under that name until it is gone. "
                             "Fix: look at the object's metadata.finalizers and its operator")


def resume(jobs: Any, stored: Mapping[str, str]) -> Resumed:
    """Decide on the stored object (``jobs`` is a ``KubernetesJobs`` of the stored namespace)."""
    what = f"{stored['kind']} {stored['namespace']}/{stored['name']} (uid {stored['uid']})"
    obj = jobs.get(stored["name"])
    if obj is None:
        return Resumed(None, f"{what} stored by an earlier try is gone: creating a new job")
    uid = (obj.get("metadata") or {}).get("uid")
    if uid != stored["uid"]:
        return Resumed(None, f"{what} stored by an earlier try is gone: {stored['name']} is now a different "
                             f"object (uid {uid}), not adopted: creating a new job")
    from airflow_provider_flyte.remote.jobs import EXPIRES_ANNOTATION

    if obj["metadata"].get("deletionTimestamp"):  # an earlier try's deletion still running (finalizers, pods)
        _wait_gone(jobs, stored["name"], stored["uid"], what)
        return Resumed(None, f"{what} was being deleted by an earlier try: gone now, creating a new job")
    annotations = obj["metadata"].get("annotations") or {}
    if annotations.get(EXPIRES_ANNOTATION):
        return Resumed(None, f"{what} failed and is kept for debugging: creating a new job")
    state = jobs.manifest.job_state(obj)
    if state.done and not state.succeeded:
        jobs.delete(stored["name"], uid=stored["uid"])
        return Resumed(None, f"{what} ended without success ({state.phase}): deleted, creating a new job")
    if state.done:
        return Resumed(obj, f"Reattaching by uid to {what}: it succeeded while no worker watched; reading its outcome")
    return Resumed(obj, f"Reattaching by uid to {what}, still running ({state.phase or 'starting'})")


__all__ = ["STATE_KEY", "Resumed", "identity", "recall", "remember", "resume", "task_state_store"]
