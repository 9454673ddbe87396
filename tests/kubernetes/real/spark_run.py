"""A Spark task through the provider's runner on the real API server, as a least-privileged user.

Nothing runs the job's pods here (no operator, no kubelet): :class:`StatusWriter`, as the admin,
plays spark-operator's part far enough for the provider to go through its whole sequence of calls:
once the job and its Secret exist (and the Secret is owned), it sets the application ``FAILED``
through the status subresource. The provider then reads the log, finds no outcome, deletes the job
(or keeps it with ``keep_failed_s``) and raises :class:`KubernetesJobError`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.manifests import spark as spark_manifest
from airflow_provider_flyte.manifests.base import job_name
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS

SECRET_VARIABLE = "rbac_token"
SECRET_VALUE = "s3cr3t-rbac-value"


def task_info(task_id: str) -> TaskInfo:
    return TaskInfo(dag_id="rbac", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS)


def secret_name(task_id: str) -> str:
    return f"{job_name(task_info(task_id))}-secrets"


def run_spark(conn_id: str, namespace: str, task_id: str, **options: Any) -> Any:
    """Run ``remote_tasks.spark_sum_of_squares`` with one secret, waiting in the worker."""
    import remote_tasks

    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.plugins.spark import Spark
    from airflow_provider_flyte.secrets import Secret

    config = Spark(spark_conf={"spark.executor.instances": "1"})
    env = TaskEnvironment(name="k8s", image="sim/venv:1", secrets=[Secret(key=SECRET_VARIABLE)])
    spec = build_spec(task_info(task_id), config.validated(), env, conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 60, "poll_interval": 0.5,
                                      "namespace": namespace, **options})
    return TaskRunner(spec, config.validated(), remote_tasks.spark_sum_of_squares).run((3,), {})


@dataclass
class StatusWriter:
    """Sets each SparkApplication of ``namespace`` ``FAILED`` once it exists and its Secret is owned (or 5 s)."""

    cluster: Any
    namespace: str
    secrets_seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> StatusWriter:
        self._thread = threading.Thread(target=self._run, daemon=True, name="status-writer")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from kubernetes import client

        api = self.cluster.api_client("admin")
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        first_seen: dict[str, float] = {}
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                items = custom.list_namespaced_custom_object(
                    spark_manifest.GROUP, spark_manifest.VERSION, self.namespace, spark_manifest.PLURAL)["items"]
                for obj in items:
                    name = obj["metadata"]["name"]
                    if (obj.get("status") or {}).get("applicationState"):
                        continue
                    first_seen.setdefault(name, time.monotonic())
                    secret = None
                    with contextlib.suppress(Exception):
                        secret = core.read_namespaced_secret(f"{name}-secrets", self.namespace)
                    if secret is not None:
                        self.secrets_seen[name] = api.sanitize_for_serialization(secret)
                    owned = secret is not None and secret.metadata.owner_references
                    if owned or time.monotonic() - first_seen[name] > 5:
                        custom.patch_namespaced_custom_object_status(
                            spark_manifest.GROUP, spark_manifest.VERSION, self.namespace, spark_manifest.PLURAL,
                            name, {"status": {"driverInfo": {}, "applicationState": {"state": "FAILED",
                                                                   "errorMessage": "set by the test"}}})
            self._stop.wait(0.2)
