"""``TaskSpec``: everything a hook needs to run one task, as plain data that round-trips through JSON.

The operator builds it from the DAG author's ``TaskEnvironment`` and the rendered plugin config;
the in-cluster entrypoint reads it back from the staging store. Hooks take a spec, never a
``TaskEnvironment``, so the engine layer does not depend on the DAG-author layer. The user's
function is not part of the spec: it travels as the call payload (:mod:`.calls`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError

#: Version of the JSON form; a reader refuses a newer one.
SPEC_FORMAT_VERSION = 1

#: Where the engine runs (see :mod:`airflow_provider_flyte.hooks.base`): embedded on this worker,
#: an existing cluster named by a connection, or the engine's own cluster the code already runs on.
LOCAL, ATTACH, IN_CLUSTER = "local", "attach", "in_cluster"
#: A warm engine server on this worker machine that outlives the task (``ReusePolicy``; docs/warm-engines.md).
WARM = "warm"
#: An ephemeral cluster per task, created through the engine's Kubernetes operator (``conn_id`` of type kubernetes).
KUBERNETES = "kubernetes"


@dataclass(frozen=True)
class TaskSpec:
    """One task's run, engine-independent and serialisable.

    :param task: identity (DAG, task, run, map index, try) and code location.
    :param config_type: import path of the plugin config class (``...plugins.spark.Spark``).
    :param config: the rendered, validated plugin config as a plain dict.
    :param env_vars: environment variables for the task and the engine's workers.
    :param resources: ``Resources`` fields (``cpu``, ``memory``, ``gpu``, ``disk``).
    :param include: extra bundle paths, as the environment declared them.
    :param conn_id: connection of an existing cluster (``None``: the engine runs here).
    :param placement: forces a placement (``in_cluster`` in a pod); ``None`` lets the engine choose.
    :param image: the container image (Kubernetes runs).
    :param env_name: the ``TaskEnvironment`` name, for logs.
    :param pod_template: Flyte's pod template (a plain dict), the base of the Kubernetes pods.
    :param options: how the placement runs (Kubernetes: ``deferrable``, ``startup_timeout``, ``deadline``...).
    :param secrets: secret *references* (``Secret.to_ref()``: key, group, env var, mount), never values;
        resolved where the task runs (issue 12).
    :param service_account: Kubernetes service account for the job's pods.
    :param interruptible: whether the job's pods may run on spot/preemptible nodes.
    :param reusable: the environment's ``ReusePolicy.to_dict()``: the engine runs as a warm server
        (placement ``warm``, docs/warm-engines.md); ``None`` starts one engine per task.
    """

    task: TaskInfo = field(default_factory=TaskInfo)
    config_type: str | None = None
    config: dict[str, Any] | None = None
    env_vars: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
    include: tuple[str, ...] = ()
    conn_id: str | None = None
    placement: str | None = None
    image: str | None = None
    env_name: str | None = None
    pod_template: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # issue 12: Flyte's environment fields that only Kubernetes runs and the secret resolver read.
    secrets: tuple[dict[str, Any], ...] = ()
    service_account: str | None = None
    interruptible: bool = False
    reusable: dict[str, Any] | None = None

    def with_changes(self, **changes: Any) -> TaskSpec:
        return dataclasses.replace(self, **changes)

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        task = dataclasses.asdict(self.task)
        task["project_root"] = str(self.task.project_root) if self.task.project_root else None
        return {
            "format_version": SPEC_FORMAT_VERSION,
            "task": task,
            "config_type": self.config_type,
            "config": self.config,
            "env_vars": dict(self.env_vars),
            "resources": self.resources,
            "include": list(self.include),
            "conn_id": self.conn_id,
            "placement": self.placement,
            "image": self.image,
            "env_name": self.env_name,
            "pod_template": self.pod_template,
            "options": dict(self.options),
            "secrets": [dict(ref) for ref in self.secrets],
            "service_account": self.service_account,
            "interruptible": self.interruptible,
            "reusable": self.reusable,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskSpec:
        version = data.get("format_version")
        if not isinstance(version, int) or version < 1:
            raise FlyteConfigError("TaskSpec.format_version", version, "not a task spec",
                                   "pass the spec.json that airflow-provider-flyte staged")
        if version > SPEC_FORMAT_VERSION:
            raise FlyteConfigError(
                "TaskSpec.format_version", version,
                f"written by a newer airflow-provider-flyte (format {version}, this one reads up to "
                f"{SPEC_FORMAT_VERSION})",
                "upgrade airflow-provider-flyte in the image to the worker's version",
            )
        task = dict(data.get("task") or {})
        root = task.get("project_root")
        task["project_root"] = Path(root) if root else None
        known = {f.name for f in dataclasses.fields(TaskInfo)}
        return cls(
            task=TaskInfo(**{k: v for k, v in task.items() if k in known}),
            config_type=data.get("config_type"),
            config=data.get("config"),
            env_vars={str(k): str(v) for k, v in (data.get("env_vars") or {}).items()},
            resources=data.get("resources"),
            include=tuple(data.get("include") or ()),
            conn_id=data.get("conn_id"),
            placement=data.get("placement"),
            image=data.get("image"),
            env_name=data.get("env_name"),
            pod_template=data.get("pod_template"),
            options=dict(data.get("options") or {}),
            secrets=tuple(dict(ref) for ref in data.get("secrets") or ()),
            service_account=data.get("service_account"),
            interruptible=bool(data.get("interruptible", False)),
            reusable=data.get("reusable"),
        )
