"""``FlyteKubernetesJobTrigger``: wait for a task's job on Kubernetes in the triggerer, freeing the worker slot.

It serializes only primitives (connection id, namespace, name, the manifest module naming the
kind, the staged spec's URI) and resolves credentials inside the triggerer through the cncf
provider's ``AsyncKubernetesHook``, so it needs no kubeconfig file of the worker. It polls the
object and its pods, applies the same decision rule as a worker that waits
(:func:`airflow_provider_flyte.remote.watch.evaluate`) and yields exactly one final
event. ``on_kill`` (the task was marked failed or cleared while deferred) deletes the object and
the staged run; a triggerer restart does not (the trigger is handed to another triggerer and goes on waiting).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_flyte.remote.jobs import (
    JobRef,
    api_status,
    look_retry_delay,
    running_pods,
    transient_look_error,
)
from airflow_provider_flyte.remote.watch import POD_STOP_WAIT_S, evaluate, remove_staged_run


class FlyteKubernetesJobTrigger(BaseTrigger):
    """Poll a SparkApplication / RayJob / DaskJob / PyTorchJob until it ends, cannot start, or the deadline passes.

    :param job: the job's :class:`~airflow_provider_flyte.remote.jobs.JobRef` as a dict.
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
        if obj is not None and ref.uid and (obj.get("metadata") or {}).get("uid") != ref.uid:
            obj = None  # the name now belongs to another object (apache/airflow#71743): this job is gone
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
                    if transient_look_error(exc, transient):
                        transient += 1
                        self.log.warning("Kubernetes API answered %s for %s; retrying", api_status(exc) or exc,
                                         ref.describe())
                        await asyncio.sleep(look_retry_delay(transient, self.poll_interval))
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
        """The task was killed while deferred (marked failed, cleared): delete its job and its staged run.

        The run is removed once at once and again after the job's pods stopped (at most
        ``POD_STOP_WAIT_S``, inside the triggerer's ``on_kill_timeout``): a pod given SIGTERM by
        the deletion may write ``error.json`` just before it sees the run gone.
        """
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
            await asyncio.to_thread(remove_staged_run, ref, self.log)
            if ref.selector:
                running = await self._wait_pods_stopped(api_client, POD_STOP_WAIT_S)
                if running:
                    self.log.warning("Pods of %s still running %.0f s after its deletion: %s", ref.describe(),
                                     POD_STOP_WAIT_S, ", ".join(running))
                await asyncio.to_thread(remove_staged_run, ref, self.log)

    async def _wait_pods_stopped(self, api_client: Any, timeout: float) -> list[str]:
        from kubernetes_asyncio import client

        ref = self.ref
        deadline = time.monotonic() + timeout
        while True:
            try:
                listed = await client.CoreV1Api(api_client).list_namespaced_pod(ref.namespace,
                                                                                label_selector=ref.selector)
            except Exception as exc:
                self.log.warning("Could not list the pods of %s: %s", ref.describe(), exc)
                return []
            running = running_pods(list(listed.items))
            if not running or time.monotonic() >= deadline:
                return running
            await asyncio.sleep(0.25)
