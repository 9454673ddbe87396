"""``TaskEnvironment``: Flyte's task environment, with ``conn_id`` choosing where it runs."""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.authoring.checks import (
    check_cache,
    check_secret_env_vars,
    resolve_include,
    validate_plugin_config,
)
from airflow_provider_flyte.bundle.user_code import project_root
from airflow_provider_flyte.core import field_checks
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.resources import Resources
from airflow_provider_flyte.reuse import ReusePolicy, as_policy, check_reuse
from airflow_provider_flyte.secrets import secrets_from_request

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import TaskDecorator

#: Flyte's rule (``flyte._environment.is_snake_or_kebab_with_numbers``).
_NAME_RE = re.compile(r"^[a-z0-9]+([_-][a-z0-9]+)*$")
#: Flyte's limit; a longer description is truncated with this suffix, as Flyte's ``parse_description``.
DESCRIPTION_LIMIT = 255
_TRUNCATED = "...(tr.)"
_THIS_PACKAGE = str(Path(__file__).resolve().parent)


@dataclass
class TaskEnvironment:
    """Where and with what a task runs: ``flyte.TaskEnvironment`` for Airflow.

    :param name: snake_case or kebab-case name of the environment.
    :param image: container image, used when the task runs on Kubernetes.
    :param resources: CPU/memory/GPU/shm, used to size local clusters and pods.
    :param env_vars: environment variables for the task and the engine's workers.
    :param plugin_config: ``Spark``, ``RayJobConfig``, ``Dask`` or ``Elastic``.
    :param reusable: a ``ReusePolicy``: keep the engine warm between tasks (Spark, Ray, Dask; see
        docs/warm-engines.md); ``None`` or ``"off"`` starts one engine per task.
    :param description: shown as the task's doc; longer than 255 characters is truncated, as Flyte does.
    :param conn_id: Airflow connection of an existing cluster; ``None`` runs on the worker.
    :param include: extra files, folders or globs bundled with the code, relative to the file that
        declares the environment; each must match something inside the project (checked at parse time).
    :param secrets: ``"name"``, ``Secret(...)`` or a list: Airflow Variables/Connections exposed as env
        vars or files (:mod:`airflow_provider_flyte.secrets`).
    :param pod_template: a pod template (dict or ``kubernetes.client`` object), the base of the pods of
        Kubernetes runs (a template *name* is refused: nothing here resolves names).
    :param interruptible: let Kubernetes runs use spot/preemptible nodes (no effect on the worker).
    :param depends_on: other environments (Flyte deploys them together; Airflow has no deployment
        step, so this is recorded only).
    :param cache: only ``"disable"`` (the default): Airflow has no task-result cache; other values are refused.
    :param queue: the Airflow queue (``BaseOperator.queue``) the tasks run on.
    :param service_account: Kubernetes service account of the job's pods.
    :param kueue_queue: Kueue LocalQueue of the task's Kubernetes job (not Flyte's: Flyte's ``queue`` is the
        Airflow queue here): the job is created suspended with the ``kueue.x-k8s.io/queue-name`` label and runs
        once Kueue admits it. ``None``: the connection's extra ``kueue_queue``, else ``[flyte]
        kubernetes_kueue_queue``; ``""``: no queue (docs/kubernetes.md, "Queueing with Kueue").
    """

    name: str
    image: str | None = None
    resources: Resources | None = None
    env_vars: dict[str, str] | None = None
    plugin_config: Any = None
    reusable: ReusePolicy | None = None
    description: str | None = None
    conn_id: str | None = None
    include: Sequence[str] = field(default_factory=tuple)
    secrets: Any = None
    pod_template: Any = None
    interruptible: bool = False
    depends_on: list[TaskEnvironment] = field(default_factory=list)
    cache: Any = "disable"
    queue: str | None = None
    service_account: str | None = None
    kueue_queue: str | None = None
    #: The file that declared the environment (relative ``include`` paths start from its folder).
    declaring_file: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise FlyteConfigError(
                "TaskEnvironment.name", self.name,
                f"Environment name {self.name!r} must be in snake_case or kebab-case format.",
                'use lowercase letters and digits separated by single "_" or "-", e.g. "spark_env"',
            )
        if self.description is not None:
            if not isinstance(self.description, str):
                raise FlyteConfigError("TaskEnvironment.description", self.description, "not a string",
                                       "pass a short text")
            if len(self.description) > DESCRIPTION_LIMIT:
                self.description = self.description[: DESCRIPTION_LIMIT - len(_TRUNCATED)] + _TRUNCATED
        if self.env_vars is not None and not isinstance(self.env_vars, dict):
            raise FlyteConfigError("TaskEnvironment.env_vars", self.env_vars, "not a dict of names to values",
                                   "pass a dict, e.g. env_vars={'A': '1'} instead of ['A=1']")
        if self.env_vars is not None and not (isinstance(self.env_vars, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.env_vars.items()
        )):
            raise FlyteConfigError(
                "TaskEnvironment.env_vars", self.env_vars, "keys and values must be strings",
                "quote the values, e.g. {'OMP_NUM_THREADS': '4'}",
            )
        if self.env_vars:
            from airflow_provider_flyte.core.masking import register_sensitive

            register_sensitive(self.env_vars)  # a sensitive name's value (API_TOKEN=...) shows as *** in logs
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise FlyteConfigError(
                "TaskEnvironment.resources", self.resources, "not a Resources object",
                'use Resources(cpu="2", memory="4Gi")',
            )
        self.secrets_list = secrets_from_request(self.secrets, field="TaskEnvironment.secrets")
        check_secret_env_vars(self.secrets_list, self.env_vars)
        if isinstance(self.pod_template, str):
            raise FlyteConfigError("TaskEnvironment.pod_template", self.pod_template,
                                   "a named pod template cannot be looked up on Airflow (Flyte's backend resolves "
                                   "names; there is none here)",
                                   "pass the template itself: a dict in Kubernetes form or a kubernetes.client "
                                   "V1PodTemplateSpec/V1Pod")
        if self.pod_template is not None and not isinstance(self.pod_template, dict) and not hasattr(
            self.pod_template, "to_dict"
        ):
            raise FlyteConfigError("TaskEnvironment.pod_template", self.pod_template, "not a pod template",
                                   "pass a dict in Kubernetes form or a kubernetes.client V1PodTemplateSpec/V1Pod")
        if not isinstance(self.interruptible, bool):
            raise FlyteConfigError("TaskEnvironment.interruptible", self.interruptible, "not a bool",
                                   "pass True or False")
        self.depends_on = list(self.depends_on or [])
        for dep in self.depends_on:
            if not isinstance(dep, TaskEnvironment):
                raise FlyteConfigError("TaskEnvironment.depends_on", dep, "not a TaskEnvironment",
                                       "list other TaskEnvironment objects")
        check_cache(self.cache, field="TaskEnvironment.cache")
        for key in ("queue", "service_account", "conn_id", "image", "kueue_queue"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, str):
                raise FlyteConfigError(f"TaskEnvironment.{key}", value, "not a string", f"pass {key} as a string")
        field_checks.check_env_var_names("TaskEnvironment.env_vars", self.env_vars)
        field_checks.check_image("TaskEnvironment.image", self.image)
        field_checks.check_service_account("TaskEnvironment.service_account", self.service_account)
        field_checks.check_kueue_queue("TaskEnvironment.kueue_queue", self.kueue_queue)
        if isinstance(self.include, str):
            raise FlyteConfigError("TaskEnvironment.include", self.include,
                                   "Expected include to be a sequence of str paths, got a bare str",
                                   f"wrap it in a tuple: include=({self.include!r},)")
        self.include = tuple(self.include or ())
        if self.declaring_file is None:
            self.declaring_file = _declaring_file()
        self.include_files = resolve_include(self.include, self.declaring_file)
        self.reusable = as_policy(self.reusable, field="TaskEnvironment.reusable")
        if self.plugin_config is not None:
            entry = validate_plugin_config(self.plugin_config, field="TaskEnvironment.plugin_config")
            if entry is not None:
                check_reuse(self.reusable, self.plugin_config, supports_reuse=entry.supports_reuse,
                            field="TaskEnvironment.plugin_config")

    def clone_with(self, name: str | None = None, **changes: Any) -> TaskEnvironment:
        """A copy with a new name and some fields changed, as ``flyte.TaskEnvironment.clone_with``.

        ``env.clone_with("gpu_env", resources=Resources(gpu=1))``; unchanged fields are inherited.
        """
        known = {f.name for f in fields(self)} - {"declaring_file"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise FlyteConfigError("TaskEnvironment.clone_with", unknown, "Unexpected keyword arguments",
                                   f"use only {', '.join(sorted(known))}")
        if name is not None:
            changes["name"] = name
        if "reusable" in changes and changes["reusable"] == "off":
            changes["reusable"] = None
        if "include" in changes:  # new include paths are relative to the caller's file
            changes["declaring_file"] = _declaring_file()
        return replace(self, **changes)

    def task(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
        """Flyte-style ``@env.task`` / ``@env.task(retries=2, timeout=600, short_name="...")``."""
        from airflow_provider_flyte.decorators.flyte import check_positional, flyte_task

        check_positional("TaskEnvironment.task", python_callable)
        return flyte_task(python_callable, env=self, **kwargs)

    @property
    def project_root(self) -> Path | None:
        """The folder the code bundle is built from (the DAG folder that holds the declaring file)."""
        return project_root(self.declaring_file) if self.declaring_file else None


def _declaring_file() -> str | None:
    """The first file on the call stack outside this package: where the environment was declared."""
    frame = inspect.currentframe()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and os.path.exists(filename) and not os.path.abspath(filename).startswith(
            _THIS_PACKAGE + os.sep
        ):
            return os.path.abspath(filename)
        frame = frame.f_back
    return None
