"""Extra links to a task's Kubernetes job and its driver / head / rank-0 pod.

Recorded only when ``[flyte] kubernetes_object_url`` / ``[flyte] kubernetes_pod_url`` hold a
template (a dashboard URL: Kubernetes has no UI of its own). Placeholders: ``{name}`` (the job),
``{namespace}``, ``{conn_id}``, ``{kind}``, and for the pod link ``{pod}`` (its name, where the
operator names it predictably: Spark's driver, Dask's runner) and ``{selector}`` (a label
selector of the pod otherwise: Ray's submitter, PyTorch's master).
"""

from __future__ import annotations

from airflow_provider_flyte.links.base import FlyteEngineLink


class KubernetesJobLink(FlyteEngineLink):
    """The task's SparkApplication / RayJob / DaskJob / PyTorchJob in a Kubernetes dashboard."""

    name = "Kubernetes job"
    link_key = "kubernetes_object"


class KubernetesPodLink(FlyteEngineLink):
    """The job's driver / head / rank-0 pod, whose log is the task's remote log."""

    name = "Kubernetes driver pod"
    link_key = "kubernetes_pod"


def kubernetes_links() -> tuple[FlyteEngineLink, ...]:
    """The links every engine's operator shows (empty buttons unless the templates are configured)."""
    return (KubernetesJobLink(), KubernetesPodLink())
