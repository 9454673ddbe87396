"""``RayJobConfig`` as a KubeRay ``RayJob`` (``ray.io/v1``).

The shape follows flyteplugins' Ray backend plugin (``flyteplugins/go/tasks/plugins/k8s/ray``):

- ``entrypoint`` is the task's command (``shlex.join(command + args)``); KubeRay's submitter
  runs it with ``ray job submit`` on the head once the cluster is ready. The task's code must
  be in the image or reach the job through ``runtime_env`` (the run path's business).
- ``runtimeEnvYAML`` is ``RayJobConfig.runtime_env`` with the task's env (``JobTarget.env``)
  added to its ``env_vars``, the config's entries winning: the same rule as the Ray hook on an
  existing cluster. The env reaches the job's driver and every Ray worker this way, which
  is what flyte#5843 lost (the runtime_env never reached the RayJob). The pods' containers
  do not get it a second time.
- ``headGroupSpec`` / ``workerGroupSpecs[]``: the node's ``pod_template`` is the base of the
  group's ``template``, never dropped (flyte-sdk#1196); the Ray container (``ray-head`` /
  ``ray-worker``, or the template's container of that name) is moved first, where KubeRay
  looks for it, and gets the image and ``requests`` / ``limits`` (the task's resources where
  the node sets neither) unless the template sets its own. ``rayStartParams`` are strings;
  the head gets ``disable-usage-stats: "true"`` unless given (as Flyte, and the local hook).
- Worker replicas: ``minReplicas`` / ``maxReplicas`` are required by the CRD. Unset, they are
  ``0`` and ``replicas`` (Flyte's backend: ``min(min_replicas or 0, replicas)`` and
  ``max(max_replicas or 0, replicas)``), so autoscaling never grows a group past what was
  asked for unless ``max_replicas`` says so.
- ``enableInTreeAutoscaling`` and ``autoscalerOptions`` only with ``enable_autoscaling=True``
  (KubeRay ignores the options otherwise).
- Cleanup: ``shutdownAfterJobFinishes`` as configured. When it is ``False`` (the default of
  ``RayJobConfig``) KubeRay keeps the RayCluster after the job, so the run path must delete the
  RayJob itself (its RayCluster goes with it) once the job ended or the task is killed: a
  RayCluster must never be orphaned (flyte#3897). ``ttlSecondsAfterFinished`` is set only when
  configured; KubeRay refuses a positive TTL without ``shutdownAfterJobFinishes``, so that is
  a :class:`FlyteConfigError` here.
- ``metadata.name`` is :attr:`JobTarget.name`, at most 47 characters (``base.NAME_MAX``, set by
  KubeRay's ``MaxRayJobNameLength``: it appends 6 to name the RayCluster).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.base import (
    JobState,
    JobTarget,
    env_list,
    k8s_resources,
    object_meta,
    pod_template,
    with_labels,
)
from airflow_provider_flyte.plugins.ray import AutoscalerOptionsConfig, RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.resources import Resources

GROUP = "ray.io"
VERSION = "v1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RayJob"
PLURAL = "rayjobs"

HEAD_CONTAINER = "ray-head"
WORKER_CONTAINER = "ray-worker"

#: ``AutoscalerOptionsConfig.UpscalingMode`` -> ``autoscalerOptions.upscalingMode`` (UNSPECIFIED: unset).
UPSCALING_MODES = {
    AutoscalerOptionsConfig.UpscalingMode.DEFAULT: "Default",
    AutoscalerOptionsConfig.UpscalingMode.AGGRESSIVE: "Aggressive",
    AutoscalerOptionsConfig.UpscalingMode.CONSERVATIVE: "Conservative",
}

#: ``status.jobDeploymentStatus`` values (KubeRay ``JobDeploymentStatus``; ``""`` is New). Only
#: ``Complete``, ``Failed`` and ``ValidationFailed`` are final: ``Retrying`` starts a new
#: cluster (``backoffLimit``), ``Suspended`` waits for a resume.
DEPLOYMENT_STATUSES = (
    "", "Initializing", "Running", "Complete", "Failed", "ValidationFailed", "Suspending", "Suspended",
    "Retrying", "Waiting",
)
FINAL_DEPLOYMENT_STATUSES = frozenset({"Complete", "Failed", "ValidationFailed"})
#: ``status.jobStatus`` values (Ray's ``JobStatus``; ``""`` is New); the last three are terminal.
JOB_STATUSES = ("", "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED")
TERMINAL_JOB_STATUSES = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})


def build_manifest(config: RayJobConfig, target: JobTarget) -> dict[str, Any]:
    """The ``RayJob`` that runs ``target`` on a new RayCluster shaped by ``config``.

    ``config`` is validated first (:meth:`PluginConfig.validated`): a template not rendered yet,
    anywhere in it, is a :class:`FlyteConfigError` naming the field.
    """
    config = config.validated()
    command = [*target.command, *target.args]
    if not command:
        raise FlyteConfigError(
            "JobTarget.command", target.command, "a RayJob needs an entrypoint command",
            "build the target with the command that runs the task (JobTarget.for_task(command=[...]))",
        )
    if not config.shutdown_after_job_finishes and config.ttl_seconds_after_finished:
        raise FlyteConfigError(
            "RayJobConfig.ttl_seconds_after_finished", config.ttl_seconds_after_finished,
            "KubeRay accepts a TTL only when the cluster is shut down after the job",
            "set shutdown_after_job_finishes=True, or leave ttl_seconds_after_finished unset",
        )
    cluster: dict[str, Any] = {
        "headGroupSpec": _head_group(config, target),
        "workerGroupSpecs": [_worker_group(group, target) for group in config.worker_node_config],
    }
    if config.enable_autoscaling:
        cluster["enableInTreeAutoscaling"] = True
        if config.autoscaler_options is not None:
            cluster["autoscalerOptions"] = _autoscaler_options(config.autoscaler_options)
    spec: dict[str, Any] = {
        "entrypoint": shlex.join(command),
        "shutdownAfterJobFinishes": config.shutdown_after_job_finishes,
        "rayClusterSpec": cluster,
    }
    runtime_env_yaml = _runtime_env_yaml(config.runtime_env, target.env)
    if runtime_env_yaml is not None:
        spec["runtimeEnvYAML"] = runtime_env_yaml
    if config.ttl_seconds_after_finished is not None:
        spec["ttlSecondsAfterFinished"] = config.ttl_seconds_after_finished
    if target.active_deadline_s is not None:  # KubeRay fails the job (DeadlineExceeded) and deletes its cluster
        spec["activeDeadlineSeconds"] = target.active_deadline_s
    metadata = object_meta(target)
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}


def job_state(obj: Mapping[str, Any]) -> JobState:
    """Whether the RayJob ended, from ``status.jobDeploymentStatus`` and ``status.jobStatus``.

    The deployment status decides when it ended (``Complete`` / ``Failed`` /
    ``ValidationFailed``; a failed Ray job being retried is not over); the Ray job's status
    decides whether it succeeded (``Complete`` with ``SUCCEEDED``; ``Complete`` with ``FAILED`` or
    ``STOPPED`` is a failure). The phase reads ``<deployment>/<job status>`` (``New``: none yet).
    """
    status = obj.get("status") or {}
    deployment = status.get("jobDeploymentStatus") or ""
    job = status.get("jobStatus") or ""
    phase = f"{deployment or 'New'}/{job}" if job else (deployment or "New")
    message = ": ".join(part for part in (status.get("reason") or "", status.get("message") or "") if part)
    done = deployment in FINAL_DEPLOYMENT_STATUSES
    return JobState(phase, done=done, succeeded=done and deployment == "Complete" and job == "SUCCEEDED",
                    message=message)


def _head_group(config: RayJobConfig, target: JobTarget) -> dict[str, Any]:
    head = config.head_node_config
    params = _start_params(head.ray_start_params if head else None)
    params.setdefault("disable-usage-stats", "true")
    template = _node_template(
        head.pod_template if head else None, "HeadNodeConfig.pod_template", HEAD_CONTAINER, target,
        head.requests if head else None, head.limits if head else None,
    )
    return {"rayStartParams": params, "template": template}


def _worker_group(group: WorkerNodeConfig, target: JobTarget) -> dict[str, Any]:
    where = f"WorkerNodeConfig[{group.group_name!r}]"
    return {
        "groupName": group.group_name,
        "replicas": group.replicas,
        "minReplicas": min(group.min_replicas or 0, group.replicas),
        "maxReplicas": max(group.max_replicas or 0, group.replicas),
        "rayStartParams": _start_params(group.ray_start_params),
        "template": _node_template(group.pod_template, f"{where}.pod_template", WORKER_CONTAINER, target,
                                   group.requests, group.limits),
    }


def _node_template(
    user_template: Any, field_name: str, container_name: str, target: JobTarget,
    requests: Resources | None, limits: Resources | None,
) -> dict[str, Any]:
    """The node's pod template on the user's: the Ray container first, with image and resources."""
    template = pod_template(user_template, field_name, container_name=container_name, image=target.image)
    containers = template["spec"]["containers"]
    index = next(i for i, c in enumerate(containers) if c.get("name") == container_name)
    container = containers.pop(index)
    containers.insert(0, container)  # KubeRay's RayContainerIndex is 0
    if not container.get("resources"):
        resources = node_resources(requests, limits, target.resources)
        if resources:
            container["resources"] = resources
    return with_labels(template, target.labels)


def node_resources(
    requests: Resources | None, limits: Resources | None, default: Resources | None = None,
) -> dict[str, dict[str, str]]:
    """A container's ``resources`` from a node's ``requests`` and ``limits`` (``default`` if neither).

    Everything in ``limits`` is a limit (of a ``(request, limit)`` tuple, the limit); GPUs are
    limits (Kubernetes wants no GPU request without an equal limit).
    """
    if requests is None and limits is None:
        return k8s_resources(default)
    wanted = k8s_resources(requests)
    capped = k8s_resources(limits)
    out: dict[str, dict[str, str]] = {}
    if wanted.get("requests"):
        out["requests"] = dict(wanted["requests"])
    limit_values = {**wanted.get("limits", {}), **capped.get("requests", {}), **capped.get("limits", {})}
    if limit_values:
        out["limits"] = limit_values
    return out


def _start_params(params: Mapping[str, str] | None) -> dict[str, str]:
    """``rayStartParams``: every value a string (the CRD's ``map[string]string``)."""
    return {str(key): str(value) for key, value in (params or {}).items()}


def _autoscaler_options(options: AutoscalerOptionsConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if options.upscaling_mode in UPSCALING_MODES:
        out["upscalingMode"] = UPSCALING_MODES[options.upscaling_mode]
    if options.idle_timeout_seconds is not None:
        out["idleTimeoutSeconds"] = options.idle_timeout_seconds
    if options.image:
        out["image"] = options.image
    if options.env:
        out["env"] = env_list(options.env)
    resources = k8s_resources(options.resources)
    if resources:
        out["resources"] = resources
    return out


def _runtime_env_yaml(runtime_env: Mapping[str, Any] | None, env: Mapping[str, str]) -> str | None:
    """``runtime_env`` with ``env`` under its ``env_vars`` (the config's win), as YAML; ``None`` if empty."""
    import yaml

    merged = _plain(dict(runtime_env or {}))
    env_vars = {**{str(k): str(v) for k, v in env.items()}, **(merged.get("env_vars") or {})}
    if env_vars:
        merged["env_vars"] = {str(k): str(v) for k, v in env_vars.items()}
    if not merged:
        return None
    try:
        return yaml.safe_dump(merged, sort_keys=True)
    except yaml.YAMLError as exc:
        raise FlyteConfigError(
            "RayJobConfig.runtime_env", runtime_env, f"cannot be written as YAML for the RayJob ({exc})",
            "use plain values in runtime_env: strings, numbers, booleans, lists and dicts",
        ) from None


def _plain(value: Any) -> Any:
    """Tuples as lists, recursively (YAML's safe dumper writes no tuples)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
