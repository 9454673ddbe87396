"""``FlyteKubernetesJobTrigger``: wait for a task's job on Kubernetes in the triggerer, freeing the worker slot.

It serializes only primitives (connection id, namespace, name, the manifest module naming the
kind, the staged spec's URI) and resolves credentials inside the triggerer through the cncf
provider's ``AsyncKubernetesHook``, so it needs no kubeconfig file of the worker. It polls the
object and its pods, applies the same decision rule as a worker that waits
(:func:`airflow_provider_flyte.runtime.kubernetes_run.evaluate`) and yields exactly one final
event. ``on_kill`` (the task was marked failed or cleared while deferred) deletes the object and
the staged run; a
triggerer restart does not (the trigger is handed to another triggerer and goes on waiting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_flyte.runtime.kubernetes_run import JobRef, api_status, evaluate


class FlyteKubernetesJobTrigger(BaseTrigger):
    """Poll a SparkApplication / RayJob / DaskJob / PyTorchJob until it ends, cannot start, or the deadline passes.

    :param job: the job's :class:`~airflow_provider_flyte.runtime.kubernetes_run.JobRef` as a dict.
    :param poll_interval: seconds between two looks at the object.
    :param startup_timeout: seconds the job may take to get running.
    :param started_at: epoch seconds when the job was created (startup is counted from it).
    :param deadline: epoch seconds of the task's ``execution_timeout``, if any.
    """

    def __init__(self, job: dict[str, Any], *, poll_interval: float, startup_timeout: float, started_at: float,
                 deadline: float | None = None) -> None:
        super().__init__()
        self.job = dict(job)
        self.poll_interval = float(poll_interval)
        self.startup_timeout = float(startup_timeout)
        self.started_at = float(started_at)
        self.deadline = None if deadline is None else float(deadline)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"job": self.job, "poll_interval": self.poll_interval, "startup_timeout": self.startup_timeout,
             "started_at": self.started_at, "deadline": self.deadline},
        )

    @property
    def ref(self) -> JobRef:
        return JobRef.from_dict(self.job)

    def _hook(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import AsyncKubernetesHook

        return AsyncKubernetesHook(conn_id=self.ref.conn_id)

    async def _look(self, api_client: Any) -> tuple[dict[str, Any] | None, list[Any]]:
        from kubernetes_asyncio import client

        ref = self.ref
        manifest = ref.manifest
        try:
            obj = await client.CustomObjectsApi(api_client).get_namespaced_custom_object(
                manifest.GROUP, manifest.VERSION, ref.namespace, manifest.PLURAL, ref.name)
        except Exception as exc:
            if api_status(exc) != 404:
                raise
            obj = None
        pods: list[Any] = []
        if ref.selector:
            listed = await client.CoreV1Api(api_client).list_namespaced_pod(ref.namespace, label_selector=ref.selector)
            pods = list(listed.items)
        return obj, pods

    async def run(self) -> AsyncIterator[TriggerEvent]:
        ref = self.ref
        transient = 0
        async with self._hook().get_conn() as api_client:
            while True:
                try:
                    obj, pods = await self._look(api_client)
                    transient = 0
                except Exception as exc:
                    status = api_status(exc)
                    if (status in (429, 500, 502, 503, 504) or status is None) and transient < 10:
                        transient += 1
                        self.log.warning("Kubernetes API answered %s for %s; retrying", status or exc, ref.describe())
                        await asyncio.sleep(min(30.0, self.poll_interval * 2 ** transient))
                        continue
                    yield TriggerEvent({"status": "failed", "message": f"cannot read {ref.describe()}: {exc}",
                                        "job": ref.to_dict()})
                    return
                # evaluate() counts in one clock: seconds since the job was created
                now = time.time()
                final = evaluate(ref, obj, pods, started=self.started_at, now=now,
                                 startup_timeout=self.startup_timeout, deadline=self.deadline)
                if final is not None:
                    yield TriggerEvent(final)
                    return
                await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The task was killed while deferred (marked failed, cleared): delete its job."""
        from kubernetes_asyncio import client

        ref = self.ref
        manifest = ref.manifest
        async with self._hook().get_conn() as api_client:
            try:
                await client.CustomObjectsApi(api_client).delete_namespaced_custom_object(
                    manifest.GROUP, manifest.VERSION, ref.namespace, manifest.PLURAL, ref.name,
                    propagation_policy="Foreground")
                self.log.info("Deleted %s: the task was killed while deferred", ref.describe())
            except Exception as exc:
                if api_status(exc) != 404:
                    raise
        await asyncio.to_thread(self._remove_staged_run)

    def _remove_staged_run(self) -> None:
        """The staged spec, bundle and payload of the killed run: nobody reads its outcome now."""
        from airflow_provider_flyte.runtime import staging

        ref = self.ref
        try:
            staging.cleanup_run(ref.spec_uri, conn_id=ref.staging_conn_id)
        except Exception:
            self.log.warning("Could not remove the staged run %s", ref.spec_uri, exc_info=True)
