"""The DAG author's objects -> the plain-data :class:`TaskSpec` the runner and hooks work from."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core import settings
from airflow_provider_flyte.core.spec import LOCAL, TaskSpec

if TYPE_CHECKING:
    from airflow_provider_flyte.core.task_info import TaskInfo
    from airflow_provider_flyte.environment import TaskEnvironment
    from airflow_provider_flyte.plugins.base import PluginConfig


def build_spec(task: TaskInfo, config: PluginConfig | None, env: TaskEnvironment | None,
               conn_id: str | None) -> TaskSpec:
    """The plain-data spec the runner and hooks work from (the DAG author's objects stay here)."""
    from airflow_provider_flyte.core.engines import find

    resources = env.resources if env else None
    return TaskSpec(
        task=task,
        config_type=find(type(config)).config_path if config is not None else None,
        config=config.to_dict() if config is not None else None,
        env_vars=dict(env.env_vars or {}) if env else {},
        resources=resources.to_dict() if resources is not None else None,
        include=tuple(env.include) if env else (),
        conn_id=conn_id,
        image=env.image if env else None,
        env_name=env.name if env else None,
        secrets=tuple(secret.to_ref() for secret in env.secrets_list) if env else (),
        pod_template=pod_template_json(env.pod_template) if env else None,
        service_account=env.service_account if env else None,
        interruptible=bool(env.interruptible) if env else False,
        reusable=env.reusable.to_dict() if env is not None and env.reusable is not None else None,
    )


def check_nodes(config: PluginConfig | None, conn_id: str | None) -> None:
    """A config that cannot run on the Airflow worker (no ``conn_id``) says so before the run starts.

    The worker is one node (local or warm placement): each config's ``check_placement`` knows what it needs.
    """
    if config is not None and conn_id is None:
        config.check_placement(LOCAL)


def pod_template_json(template: Any) -> dict[str, Any] | None:
    """A pod template in the spec's JSON form: ``kubernetes.client`` objects become Kubernetes dicts."""
    if template is None or isinstance(template, dict):
        return template
    from airflow_provider_flyte.manifests.base import as_dict

    return as_dict(template, "TaskEnvironment.pod_template")


def placement_options(*, deferrable: bool | None, startup_timeout: float | None, keep_failed_s: float | None,
                      execution_timeout: timedelta | None, kueue_queue: str | None = None,
                      kueue_timeout: float | None = None) -> dict[str, Any]:
    """How a remote placement runs this task (Kubernetes: deferral, startup timeout, deadline, Kueue).

    An unset option takes its ``[flyte]`` setting; an unset ``kueue_queue`` is left out (the placement
    asks the connection, then ``[flyte] kubernetes_kueue_queue``).
    """
    options: dict[str, Any] = {
        "deferrable": deferrable if deferrable is not None
        else settings.flag("kubernetes_deferrable"),
        "startup_timeout": startup_timeout if startup_timeout is not None
        else settings.number("kubernetes_startup_timeout"),
        "keep_failed_s": keep_failed_s if keep_failed_s is not None
        else settings.number("kubernetes_keep_failed_s"),
        "namespace": settings.text("kubernetes_namespace"),
        "kueue_timeout": kueue_timeout if kueue_timeout is not None
        else settings.number("kubernetes_kueue_timeout"),
    }
    if kueue_queue is not None:
        options["kueue_queue"] = kueue_queue
    if execution_timeout is not None:
        options["deadline"] = time.time() + execution_timeout.total_seconds()
    return options
