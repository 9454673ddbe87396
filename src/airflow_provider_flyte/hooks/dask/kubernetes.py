"""Dask on an ephemeral cluster per task: a ``DaskJob`` run by dask-kubernetes; its job runner is the task."""

from __future__ import annotations

from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.hooks.placements.kubernetes import KubernetesPlacement


class KubernetesDaskHook(KubernetesPlacement, FlyteDaskHook):
    """The runner pod ``<job>-runner`` (container ``job``) holds the task's log."""

    log_container = "job"

    def log_source(self, name: str) -> dict[str, str]:
        return {"log_pod": f"{name}-runner"}
