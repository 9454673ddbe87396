"""Ray on an ephemeral cluster per task: a ``RayJob`` run by KubeRay; the entrypoint is the task."""

from __future__ import annotations

from airflow_provider_flyte.hooks.placements.kubernetes import KubernetesPlacement
from airflow_provider_flyte.hooks.ray import FlyteRayHook


class KubernetesRayHook(KubernetesPlacement, FlyteRayHook):
    """KubeRay's submitter Job (named like the RayJob) streams the job's driver log."""

    def log_source(self, name: str) -> dict[str, str]:
        return {"log_selector": f"job-name={name}"}
