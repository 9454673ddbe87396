"""Spark on an ephemeral cluster per task: a ``SparkApplication`` run by the spark-operator."""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.hooks.placements.kubernetes import KubernetesPlacement, entrypoint_file
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.plugins.rebuild import resources_of


class KubernetesSparkHook(KubernetesPlacement, FlyteSparkHook):
    """The application's main file is the in-cluster entrypoint; the driver's log is the task's."""

    log_container = "spark-kubernetes-driver"

    def job_target(self, spec_uri: str, namespace: str) -> Any:
        from airflow_provider_flyte.manifests.base import JobTarget

        return JobTarget.for_task(self.task, image=self.spec.image, command=[], args=[spec_uri],
                                  main_file=f"local://{entrypoint_file()}", namespace=namespace,
                                  env=self.spec.env_vars, resources=resources_of(self.spec))

    def log_source(self, name: str) -> dict[str, str]:
        return {"log_pod": f"{name}-driver"}
