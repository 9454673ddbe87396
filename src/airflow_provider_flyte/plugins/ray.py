"""``RayJobConfig`` and its parts: flyteplugins' Ray config (``flyteplugins.ray.task``).

Field names, types and defaults are flyteplugins 2.12's. Locally the worker groups and
resources size the embedded Ray instance; on Kubernetes they become a KubeRay ``RayJob``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.core.bounds import check_count, check_cpus_per_worker, check_worker_memory
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.plugins.ray_checks import (
    check_ray_address,
    check_ray_start_params,
    check_runtime_env,
)
from airflow_provider_flyte.resources import Resources

# A Kubernetes label value: KubeRay puts the group name in pod labels.
_GROUP_NAME_RE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass
class AutoscalerOptionsConfig(PluginConfig):
    """Options of the Ray autoscaler sidecar (used with ``enable_autoscaling=True`` on Kubernetes).

    :param upscaling_mode: an ``AutoscalerOptionsConfig.UpscalingMode`` value.
    :param idle_timeout_seconds: seconds before an idle node is removed.
    :param image: container image of the autoscaler sidecar.
    :param env: environment variables of the autoscaler container.
    :param resources: resources of the autoscaler container.
    """

    class UpscalingMode:
        """flyteidl2's ``AutoscalerOptions.UpscalingMode`` values."""

        UNSPECIFIED = 0
        DEFAULT = 1
        AGGRESSIVE = 2
        CONSERVATIVE = 3

    upscaling_mode: int | None = None
    idle_timeout_seconds: int | None = None
    image: str | None = None
    env: dict[str, str] | None = None
    resources: Resources | None = None

    def check(self) -> None:
        if self.upscaling_mode is not None and self.upscaling_mode not in range(4):
            raise FlyteConfigError(
                "AutoscalerOptionsConfig.upscaling_mode", self.upscaling_mode, "not an upscaling mode",
                "use AutoscalerOptionsConfig.UpscalingMode.DEFAULT, .AGGRESSIVE or .CONSERVATIVE",
            )
        _non_negative("AutoscalerOptionsConfig.idle_timeout_seconds", self.idle_timeout_seconds)


@dataclass
class HeadNodeConfig(PluginConfig):
    """The Ray head node.

    :param ray_start_params: ``ray start`` options without ``--`` (``{"num-cpus": "2"}``), checked against
        Ray's list; locally only ``num-cpus`` is used.
    :param pod_template: pod template of the head pod on Kubernetes.
    :param requests: resources requested for the head (its CPUs size the local instance).
    :param limits: resource limits of the head.
    """

    ray_start_params: dict[str, str] | None = None
    pod_template: Any | None = None
    requests: Resources | None = None
    limits: Resources | None = None

    def check(self) -> None:
        _check_requests_within_limits("HeadNodeConfig", self.requests, self.limits)
        check_ray_start_params("HeadNodeConfig", self.ray_start_params)


@dataclass
class WorkerNodeConfig(PluginConfig):
    """A group of Ray worker nodes.

    :param group_name: the group's name, unique within the job (a Kubernetes label value).
    :param replicas: number of worker nodes in the group.
    :param min_replicas: lower bound for the autoscaler.
    :param max_replicas: upper bound for the autoscaler.
    :param ray_start_params: ``ray start`` options without ``--``, checked against Ray's list; locally
        only ``num-cpus`` is used.
    :param pod_template: pod template of the worker pods on Kubernetes.
    :param requests: resources requested per worker (its CPUs size the local instance).
    :param limits: resource limits per worker.
    """

    group_name: str
    replicas: int
    min_replicas: int | None = None
    max_replicas: int | None = None
    ray_start_params: dict[str, str] | None = None
    pod_template: Any | None = None
    requests: Resources | None = None
    limits: Resources | None = None

    def check(self) -> None:
        if not _GROUP_NAME_RE.match(self.group_name) or len(self.group_name) > 63:
            raise FlyteConfigError(
                "WorkerNodeConfig.group_name", self.group_name,
                "the group name must be 1-63 letters, digits, '-', '_' or '.', starting and ending with "
                "a letter or digit",
                'use a name such as "ray-group"',
            )
        group = f"in worker group {self.group_name!r}"
        for name in ("replicas", "min_replicas", "max_replicas"):
            _non_negative(f"WorkerNodeConfig.{name}", getattr(self, name), group)
        low, high = self.min_replicas, self.max_replicas
        if low is not None and high is not None and low > high:
            raise FlyteConfigError(
                "WorkerNodeConfig.min_replicas", low, f"min_replicas is greater than max_replicas ({high}) {group}",
                "set min_replicas <= max_replicas",
            )
        if low is not None and self.replicas < low:
            raise FlyteConfigError(
                "WorkerNodeConfig.replicas", self.replicas, f"replicas is below min_replicas ({low}) {group}",
                "set min_replicas <= replicas",
            )
        if high is not None and self.replicas > high:
            raise FlyteConfigError(
                "WorkerNodeConfig.replicas", self.replicas, f"replicas is above max_replicas ({high}) {group}",
                "set replicas <= max_replicas",
            )
        _check_requests_within_limits("WorkerNodeConfig", self.requests, self.limits)
        check_ray_start_params("WorkerNodeConfig", self.ray_start_params)
        check_count("WorkerNodeConfig.replicas", self.replicas, minimum=0, fix="use a realistic number of nodes")


@dataclass
class RayJobConfig(PluginConfig):
    """Run the task with Ray initialized (``ray.remote`` / ``ray.get`` work in the task).

    :param worker_node_config: the worker groups; locally their CPUs add up to the instance's CPUs.
    :param head_node_config: the head node.
    :param enable_autoscaling: let KubeRay's autoscaler scale the worker groups.
    :param autoscaler_options: options of the autoscaler sidecar.
    :param runtime_env: Ray runtime environment of the job (``env_vars``, ``pip`` ...).
    :param address: address of an existing Ray cluster for ``ray.init``.
    :param shutdown_after_job_finishes: delete the RayCluster when the job finishes (Kubernetes).
    :param ttl_seconds_after_finished: seconds to keep the RayCluster after the job (Kubernetes).
    """

    worker_node_config: list[WorkerNodeConfig]
    head_node_config: HeadNodeConfig | None = None
    enable_autoscaling: bool = False
    autoscaler_options: AutoscalerOptionsConfig | None = None
    runtime_env: dict | None = None  # type: ignore[type-arg]
    address: str | None = None
    shutdown_after_job_finishes: bool = False
    ttl_seconds_after_finished: int | None = None

    engine_label = "Ray"

    def check(self) -> None:
        seen: set[str] = set()
        for group in self.worker_node_config:
            if group.group_name in seen:
                raise FlyteConfigError(
                    "RayJobConfig.worker_node_config", group.group_name, "two worker groups have the same group_name",
                    "give every WorkerNodeConfig a distinct group_name",
                )
            seen.add(group.group_name)
        _non_negative("RayJobConfig.ttl_seconds_after_finished", self.ttl_seconds_after_finished)
        if self.runtime_env is not None and not all(isinstance(k, str) for k in self.runtime_env):
            raise FlyteConfigError(
                "RayJobConfig.runtime_env", self.runtime_env, "runtime_env keys must be strings",
                "use Ray's runtime_env keys, e.g. {'env_vars': {'A': '1'}}",
            )
        if self.address is not None and not self.address.strip():
            raise FlyteConfigError(
                "RayJobConfig.address", self.address, "the address is empty",
                'leave address=None to run locally, or use "ray://host:10001" / "host:6379"',
            )
        check_ray_address("RayJobConfig.address", self.address)
        check_runtime_env(self.runtime_env)

    def check_reuse(self, policy: Any) -> None:
        """Flyte's rules for a reused Ray environment: one shared RayCluster, one job at a time, no job TTL."""
        if policy.max_replicas != 1:
            raise FlyteConfigError(
                "ReusePolicy.replicas", policy.replicas,
                "Reusable Ray tasks currently support exactly 1 replica (one shared RayCluster); "
                f"got replicas={policy.replicas}.", "Use ReusePolicy(replicas=1).")
        if policy.concurrency != 1:
            raise FlyteConfigError(
                "ReusePolicy.concurrency", policy.concurrency,
                "Reusable Ray tasks currently doesn't support setting concurrency; "
                f"got concurrency={policy.concurrency}.", "Use ReusePolicy(concurrency=1) (the default).")
        if self.shutdown_after_job_finishes is True:
            raise FlyteConfigError(
                "RayJobConfig.shutdown_after_job_finishes", True,
                "shutdown_after_job_finishes cannot be used with a reuse policy: the shared RayCluster must outlive "
                "individual jobs.",
                "Remove shutdown_after_job_finishes; the cluster is shut down after ReusePolicy(idle_ttl=...) of "
                "inactivity.")
        if self.ttl_seconds_after_finished is not None and not isinstance(self.ttl_seconds_after_finished, str):
            raise FlyteConfigError(
                "RayJobConfig.ttl_seconds_after_finished", self.ttl_seconds_after_finished,
                "ttl_seconds_after_finished is ignored when a reuse policy is set",
                "use ReusePolicy(idle_ttl=...) to control when the shared RayCluster is shut down.")

    @property
    def runtime_env_yaml(self) -> str | None:
        """``runtime_env`` as YAML, the form KubeRay >= 1.1 reads (``runtimeEnvYAML``)."""
        if not self.runtime_env:
            return None
        import yaml

        return yaml.safe_dump(self.runtime_env)


def _non_negative(field: str, value: int | None, where: str = "") -> None:
    if value is not None and value < 0:
        problem = f"must be >= 0 {where}".rstrip()
        raise FlyteConfigError(field, value, problem, "use 0 or a positive number")


def _check_requests_within_limits(where: str, requests: Resources | None, limits: Resources | None) -> None:
    for name, resources in (("requests", requests), ("limits", limits)):  # a Ray node is a worker process too
        if resources is not None and resources.memory is not None:
            check_worker_memory(f"{where}.{name}.memory", resources.memory, resources.memory_request_bytes)
        if resources is not None:
            check_cpus_per_worker(f"{where}.{name}.cpu", resources.cpu, resources.cpu_request)
    if requests is None or limits is None:
        return
    pairs = (
        ("cpu", requests.cpu_request, limits.cpu_request),
        ("memory", requests.memory_request_bytes, limits.memory_request_bytes),
    )
    for name, wanted, cap in pairs:
        if wanted is not None and cap is not None and wanted > cap:
            raise FlyteConfigError(
                f"{where}.requests.{name}", getattr(requests, name), f"the request exceeds the limit ({getattr(limits, name)})",
                f"set requests.{name} <= limits.{name}",
            )
