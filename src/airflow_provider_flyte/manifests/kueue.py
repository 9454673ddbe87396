"""Kueue: a job created suspended with the queue-name label, which Kueue unsuspends when its queue admits it.

Kueue's job integrations (``kueue.x-k8s.io/queue-name`` on the job object) read and flip one field per
kind; :data:`SUSPEND_PATHS` names it for each kind this provider creates, as the CRDs declare it
(``spec.suspend`` on SparkApplication and RayJob, ``spec.runPolicy.suspend`` on PyTorchJob). The
DaskJob CRD (``kubernetes.dask.org/v1``) has no suspend field and Kueue no DaskJob integration: a
queue for a Dask task is refused, naming the ways out. KubeRay refuses a suspended RayJob without
``shutdownAfterJobFinishes`` (its ``ValidationFailed``): that is refused here before the create.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: The label Kueue reads on a job object (``constants.QueueLabel``).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
#: Where each kind's suspend flag is, from the object's root.
SUSPEND_PATHS: dict[str, tuple[str, ...]] = {
    "SparkApplication": ("spec", "suspend"),
    "RayJob": ("spec", "suspend"),
    "PyTorchJob": ("spec", "runPolicy", "suspend"),
}


def _refuse(kind: str, queue: str, source: str, *, keeps_cluster: bool) -> None:
    if kind not in SUSPEND_PATHS:
        raise FlyteConfigError(
            source, queue, f"a {kind} cannot wait in a Kueue queue: its CRD has no suspend field and Kueue has "
            f"no {kind} integration",
            'run this task without a queue (TaskEnvironment(kueue_queue="")), or on a connection that names none')
    if kind == "RayJob" and keeps_cluster:
        raise FlyteConfigError(
            source, queue, "KubeRay refuses a suspended RayJob whose shutdownAfterJobFinishes is false",
            "set RayJobConfig(shutdown_after_job_finishes=True) to queue it, or run it without a queue "
            '(TaskEnvironment(kueue_queue=""))')


def check_queueable(config: Any, manifest_path: str | None, queue: str | None, *, source: str) -> None:
    """At DAG parse: a task whose environment names a queue runs a kind Kueue can hold (see :func:`apply_queue`)."""
    if not queue or not manifest_path:
        return
    import importlib

    _refuse(importlib.import_module(manifest_path).KIND, queue, source,
            keeps_cluster=getattr(config, "shutdown_after_job_finishes", None) is False)


def apply_queue(body: dict[str, Any], queue: str, *, source: str) -> None:
    """Label ``body`` for ``queue`` and create it suspended (``source``: where the queue name came from)."""
    kind = str(body.get("kind"))
    _refuse(kind, queue, source, keeps_cluster=not (body.get("spec") or {}).get("shutdownAfterJobFinishes"))
    path = SUSPEND_PATHS[kind]
    body["metadata"].setdefault("labels", {})[QUEUE_LABEL] = queue
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = True


def queue_of(obj: Mapping[str, Any] | None) -> str:
    """The Kueue queue an object was created for (``""``: none), from its label."""
    return str(((obj or {}).get("metadata") or {}).get("labels", {}).get(QUEUE_LABEL) or "")


def suspended(obj: Mapping[str, Any] | None) -> bool:
    """Whether the object's suspend flag is set (not admitted yet, or suspended again by Kueue)."""
    node: Any = obj or {}
    for key in SUSPEND_PATHS.get(str((obj or {}).get("kind")), ()):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node is True


__all__ = ["QUEUE_LABEL", "SUSPEND_PATHS", "apply_queue", "check_queueable", "queue_of", "suspended"]
