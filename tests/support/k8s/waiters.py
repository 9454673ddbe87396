"""Many ``FlyteKubernetesJobTrigger`` s waiting in one asyncio loop against a :class:`KubeApiServer`.

The harness (this module) writes the SparkApplications and their status straight into the
server's store, so the request log holds only what the triggers asked; used by
tests/unit/remote/test_watch*.py and bench/bench_k8s_wait.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.support.k8s.server import KubeApiServer

SPARK = "airflow_provider_flyte.manifests.spark"
MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-provider-flyte"}
WAITING_VERBS = ("get", "list", "watch")


def spark_app(name: str, namespace: str = "default") -> dict[str, Any]:
    labels = {"task_id": name, **MANAGED_BY}
    return {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": {"type": "Python", "sparkVersion": "3.5.0", "mainApplicationFile": "local:///app/main.py",
                     "driver": {}, "executor": {}}}


def create_jobs(server: KubeApiServer, names: list[str], namespace: str = "default") -> None:
    res = server.store.resource("sparkoperator.k8s.io", "sparkapplications")
    for name in names:
        server.store.create(res, namespace, spark_app(name, namespace))


def set_state(server: KubeApiServer, name: str, state: str, namespace: str = "default") -> None:
    """The operator's status write: ``RUNNING``, ``COMPLETED``, ``FAILED``."""
    res = server.store.resource("sparkoperator.k8s.io", "sparkapplications")

    def edit(obj: dict[str, Any]) -> None:
        obj["status"] = {"applicationState": {"state": state}, "driverInfo": {}}

    server.store.mutate(res, namespace, name, edit, subresource="status")


def trigger(name: str, conn_id: str, *, namespace: str = "default", poll_interval: float = 2.0,
            selector: bool = True) -> Any:
    from airflow_provider_flyte.remote.jobs import JobRef
    from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger

    ref = JobRef(conn_id=conn_id, namespace=namespace, name=name, manifest_module=SPARK,
                 spec_uri=f"file:///tmp/none/{name}/spec.json",
                 selector=f"task_id={name},app.kubernetes.io/managed-by=airflow-provider-flyte" if selector else "")
    return FlyteKubernetesJobTrigger(ref.to_dict(), poll_interval=poll_interval, startup_timeout=3600,
                                     started_at=time.time())


async def wait_all(triggers: dict[str, Any]) -> dict[str, tuple[dict[str, Any], float]]:
    """Run every trigger to its first event: ``{name: (payload, time.time() it came)}``."""
    async def one(name: str, trig: Any) -> tuple[str, tuple[dict[str, Any], float]]:
        async for event in trig.run():
            return name, (event.payload, time.time())
        raise AssertionError(f"trigger of {name} ended without an event")

    return dict(await asyncio.gather(*(one(n, t) for n, t in triggers.items())))


def waiting_requests(server: KubeApiServer, since: float = 0.0) -> int:
    return sum(1 for r in server.request_log() if r.verb in WAITING_VERBS and r.time >= since)
