"""Engine-independent pieces of the Kubernetes manifests: names, labels, resources, pod templates.

Each engine's module (``manifests/<engine>.py``) turns its plugin config into the custom
resource its Kubernetes operator runs (SparkApplication, RayJob, DaskJob, PyTorchJob), using
:class:`JobTarget` for what every job shares: the name, namespace, image, labels, the task's
environment and the command that runs the task in the job's main container.

Labels follow the cncf-kubernetes provider (``dag_id``, ``task_id``, ``run_id``, ``try_number``,
``map_index``), made safe with its ``make_safe_label_value``. That provider (the
``kubernetes`` extra) is imported only when a manifest is built.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.resources import MEMORY_RE, Resources

#: Label that marks every object this provider creates.
MANAGED_BY = {"app.kubernetes.io/managed-by": "airflow-provider-flyte"}
#: Object names stay within this: the strictest operator (KubeRay, RayJob) refuses longer ones,
#: and generated pod names add suffixes.
NAME_MAX = 47
GPU_RESOURCE = "nvidia.com/gpu"
#: flyte-sdk's ``PodTemplate.primary_container_name`` default: adopted as the engine's container.
PRIMARY_CONTAINER = "primary"


@dataclass(frozen=True)
class JobTarget:
    """What every engine's job shares: identity, image, environment and the task's command.

    ``command`` + ``args`` run the task in the job's main container (RayJob's entrypoint, the
    DaskJob's job container, every PyTorchJob replica). Operators that run a *file* use
    ``main_file`` + ``args`` instead (SparkApplication's ``mainApplicationFile``).
    """

    name: str
    namespace: str
    image: str
    labels: dict[str, str]
    command: list[str]
    args: list[str] = field(default_factory=list)
    main_file: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    resources: Resources | None = None
    #: The job's own deadline where its CRD has one (RayJob, PyTorchJob): :func:`cluster_deadline_s`.
    active_deadline_s: int | None = None

    @classmethod
    def for_task(
        cls,
        task: TaskInfo,
        *,
        image: str | None,
        command: Sequence[str],
        args: Sequence[str] = (),
        main_file: str | None = None,
        namespace: str = "default",
        env: Mapping[str, str] | None = None,
        resources: Resources | None = None,
    ) -> JobTarget:
        """The target of one task try; ``image`` is required (the job's pods run it)."""
        if not image:
            raise FlyteConfigError(
                "TaskEnvironment.image", image, "a job on Kubernetes needs a container image for its pods",
                'set image="<registry>/<image>:<tag>" (with this provider and the task\'s engine installed)',
            )
        return cls(job_name(task), namespace, image, task_labels(task), list(command), list(args), main_file,
                   dict(env or {}), resources)


#: Seconds the cluster's deadline leaves after the task's ``execution_timeout``: Airflow's timeout and its
#: teardown (deleting the job) come first; the cluster's deadline only ends a job Airflow no longer watches.
CLUSTER_DEADLINE_MARGIN_S = 60


def cluster_deadline_s(deadline: float | None, now: float) -> int | None:
    """``activeDeadlineSeconds`` for a task whose ``execution_timeout`` ends at epoch ``deadline`` (``None``: none)."""
    if deadline is None:
        return None
    return max(1, math.ceil(deadline - now)) + CLUSTER_DEADLINE_MARGIN_S


def job_name(task: TaskInfo) -> str:
    """``<dag>-<task>[-<map index>]-<hash>``: DNS-1123, unique per run and try, under :data:`NAME_MAX`."""
    digest = hashlib.sha1(
        f"{task.dag_id}|{task.task_id}|{task.run_id}|{task.map_index}|{task.try_number}".encode()
    ).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]+", "-", task.slug.lower()).strip("-")[: NAME_MAX - 9].strip("-") or "task"
    if not base[0].isalpha():
        base = f"t-{base}"[: NAME_MAX - 9]
    return f"{base}-{digest}"


def task_labels(task: TaskInfo) -> dict[str, str]:
    """The cncf-kubernetes provider's task labels, plus :data:`MANAGED_BY`."""
    from airflow.providers.cncf.kubernetes.pod_generator import make_safe_label_value

    labels = {
        "dag_id": task.dag_id,
        "task_id": task.task_id,
        "try_number": str(task.try_number),
    }
    if task.run_id:
        labels["run_id"] = task.run_id
    if task.map_index is not None and task.map_index >= 0:
        labels["map_index"] = str(task.map_index)
    return {**{key: make_safe_label_value(value) for key, value in labels.items()}, **MANAGED_BY}


def k8s_resources(resources: Resources | None) -> dict[str, dict[str, str]]:
    """``Resources`` as a container's ``resources``: a tuple is ``(request, limit)``; GPUs are limits."""
    if resources is None:
        return {}
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    for key, value in (("cpu", resources.cpu), ("memory", resources.memory), ("ephemeral-storage", resources.disk)):
        if value is None:
            continue
        quantity = str if key == "cpu" else functools.partial(k8s_bytes, field=f"Resources.{_FIELDS[key]}")
        if isinstance(value, tuple):
            requests[key], limits[key] = quantity(value[0]), quantity(value[1])
        else:
            requests[key] = quantity(value)
    if resources.gpu is not None and resources.gpu_count > 0:  # issue 12: GPU(...)/Device/"A100:2" -> a count
        limits[GPU_RESOURCE] = str(resources.gpu_count)
    out = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


_FIELDS = {"memory": "memory", "ephemeral-storage": "disk"}
#: ``Resources``' byte units (case-insensitive, optional ``b``) -> Kubernetes quantity suffixes.
_K8S_SUFFIX = {"": "", "k": "k", "m": "M", "g": "G", "t": "T", "ki": "Ki", "mi": "Mi", "gi": "Gi", "ti": "Ti"}


def k8s_bytes(value: Any, field: str = "memory") -> str:
    """A byte amount as ``Resources`` reads it (``"4gb"``, ``"512Mi"``) as a Kubernetes quantity.

    Kubernetes is case-sensitive (``"500m"`` is milli-bytes); ``Resources`` is not, so the
    suffix is rewritten to mean what ``Resources`` meant: ``"4gb"`` -> ``"4G"``, ``"500m"`` -> ``"500M"``.
    """
    match = MEMORY_RE.match(str(value))
    if not match:
        raise FlyteConfigError(field, value, "not a byte quantity", 'use a Kubernetes quantity such as "4Gi" or "512Mi"')
    number, unit = match.groups()
    return f"{number}{_K8S_SUFFIX[(unit or '').lower()]}"


def env_list(env: Mapping[str, str]) -> list[dict[str, str]]:
    """``{"K": "v"}`` as a container's ``env`` list (sorted, so manifests are stable)."""
    return [{"name": key, "value": str(value)} for key, value in sorted(env.items())]


def as_dict(obj: Any, field_name: str) -> dict[str, Any]:
    """A pod template given as a dict or a ``kubernetes`` client model, as a plain dict (a copy)."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return copy.deepcopy(dict(obj))
    if hasattr(obj, "to_dict") and hasattr(obj, "openapi_types"):
        from kubernetes.client import ApiClient

        return ApiClient().sanitize_for_serialization(obj)  # type: ignore[no-any-return]
    raise FlyteConfigError(
        field_name, obj, "not a pod template",
        "pass a dict in Kubernetes' pod (template) form or a kubernetes.client V1Pod/V1PodTemplateSpec",
    )


def pod_template(
    user_template: Any,
    field_name: str,
    *,
    container_name: str,
    image: str | None = None,
    command: Sequence[str] | None = None,
    args: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    resources: Resources | None = None,
) -> dict[str, Any]:
    """A ``PodTemplateSpec`` (``metadata`` + ``spec``) built on the user's template, never dropping it.

    The user's template is the base (flyte-sdk#1196: a template silently dropped). The container
    named ``container_name`` (else one named ``primary`` or unnamed, renamed to ``container_name``;
    else a new one) gets the image, command and resources only where the template leaves them
    unset; ``env`` is added under the template's own entries. Other containers are sidecars.
    """
    template = as_dict(user_template, field_name)
    if "spec" not in template and "containers" in template:  # a bare PodSpec
        template = {"spec": template}
    template.setdefault("metadata", {})
    spec = template.setdefault("spec", {})
    containers = spec.setdefault("containers", [])
    container = next((c for c in containers if c.get("name") == container_name), None)
    if container is None:  # Flyte's pod templates call the task's container "primary"
        container = next((c for c in containers if c.get("name") in (PRIMARY_CONTAINER, None, "")), None)
    if container is None:
        container = {}
        containers.insert(0, container)
    container["name"] = container_name
    if image and not container.get("image"):
        container["image"] = image
    if command and not container.get("command") and not container.get("args"):
        container["command"] = list(command)
        if args:
            container["args"] = list(args)
    own = {item["name"] for item in container.get("env", [])}
    container["env"] = container.get("env", []) + [e for e in env_list(env or {}) if e["name"] not in own]
    if not container["env"]:
        del container["env"]
    if not container.get("resources"):
        k8s = k8s_resources(resources)
        if k8s:
            container["resources"] = k8s
    if resources is not None and resources.shm is not None:
        add_shared_memory(spec, container, resources.shm)
    return template


#: Name of the memory-backed volume mounted at ``/dev/shm`` for ``Resources(shm=...)``.
SHM_VOLUME = "flyte-shm"


def add_shared_memory(spec: dict[str, Any], container: dict[str, Any], shm: str) -> None:
    """``Resources(shm=...)``: a memory ``emptyDir`` at ``/dev/shm`` (``"auto"``: no size limit), unless present."""
    mounts = container.setdefault("volumeMounts", [])
    if any(m.get("mountPath") == "/dev/shm" for m in mounts):
        return
    empty_dir: dict[str, Any] = {"medium": "Memory"}
    if shm != "auto":
        empty_dir["sizeLimit"] = k8s_bytes(shm, field="Resources.shm")
    spec.setdefault("volumes", []).append({"name": SHM_VOLUME, "emptyDir": empty_dir})
    mounts.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})


def with_labels(template: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """Add ``labels`` to a pod template's metadata, under the template's own labels."""
    metadata = template.setdefault("metadata", {})
    metadata["labels"] = {**labels, **metadata.get("labels", {})}
    return template


def object_meta(target: JobTarget) -> dict[str, Any]:
    """``metadata`` of the job object itself."""
    return {"name": target.name, "namespace": target.namespace, "labels": dict(target.labels)}


@dataclass(frozen=True)
class JobState:
    """A job object's status, read from its ``status``: whether it ended and how."""

    phase: str
    done: bool
    succeeded: bool = False
    message: str = ""
