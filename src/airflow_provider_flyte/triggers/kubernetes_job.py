"""``FlyteKubernetesJobTrigger``: wait for a task's job on Kubernetes in the triggerer, freeing the worker slot.

It serializes only primitives (connection id, namespace, name, the manifest module naming the
kind, the staged spec's URI) and resolves credentials inside the triggerer through the cncf
provider's ``AsyncKubernetesHook``, so it needs no kubeconfig file of the worker. It does not poll:
it reads the object and its pods from the triggerer's shared watches
(:mod:`~airflow_provider_flyte.remote.waiting`: one watch per connection, namespace and kind), applies the same decision rule as a worker that waits
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
    running_pods,
)
from airflow_provider_flyte.remote.watch import POD_STOP_WAIT_S, remove_staged_run


class FlyteKubernetesJobTrigger(BaseTrigger):
    """Wait for a SparkApplication / RayJob / DaskJob / PyTorchJob until it ends, cannot start, or the deadline passes.

    :param job: the job's :class:`~airflow_provider_flyte.remote.jobs.JobRef` as a dict.
    :param poll_interval: seconds between two checks of the deadlines (no request: a change wakes it at once).
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

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_flyte.remote.waiting import wait_for_final  # the process's shared watches

        yield TriggerEvent(await wait_for_final(self.ref, poll_interval=self.poll_interval,
                                                startup_timeout=self.startup_timeout, started_at=self.started_at,
                                                deadline=self.deadline, log=self.log))

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
                    body=client.V1DeleteOptions(  # the uid as a precondition: never another object of that name
                        propagation_policy="Foreground",
                        preconditions=client.V1Preconditions(uid=ref.uid) if ref.uid else None))
                self.log.info("Deleted %s: the task was killed while deferred", ref.describe())
            except Exception as exc:
                if api_status(exc) not in (404, 409):  # 409: the name now holds another object
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
