"""PyTorch Elastic on an ephemeral cluster per task: a ``PyTorchJob`` run by the Kubeflow training operator."""

from __future__ import annotations

from airflow_provider_flyte.hooks.placements.kubernetes import KubernetesPlacement
from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook


class KubernetesElasticHook(KubernetesPlacement, FlyteElasticHook):
    """Every Worker replica runs the entrypoint; worker 0 (job role master) holds the log."""

    log_container = "pytorch"

    def log_source(self, name: str) -> dict[str, str]:
        return {"log_selector": f"training.kubeflow.org/job-name={name},training.kubeflow.org/job-role=master"}
