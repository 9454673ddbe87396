"""``TaskEnvironment``: Flyte's task environment, with ``conn_id`` choosing where it runs."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte import registry
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig, is_template
from airflow_provider_flyte.resources import Resources

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import TaskDecorator

_NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")


@dataclass
class TaskEnvironment:
    """Where and with what a task runs: ``flyte.TaskEnvironment`` for Airflow.

    :param name: snake_case or kebab-case name of the environment.
    :param image: container image, used when the task runs on Kubernetes.
    :param resources: CPU/memory, used to size local clusters and pods.
    :param env_vars: environment variables for the task and the engine's workers.
    :param plugin_config: ``Spark``, ``RayJobConfig``, ``Dask`` or ``Elastic``.
    :param reusable: Flyte's reuse policy; not combinable with most plugin configs.
    :param description: up to 255 characters, shown as the task's doc.
    :param conn_id: Airflow connection of an existing cluster; ``None`` runs on the worker.
    :param include: files or folders that form the code bundle (default: the DAG folder).
    """

    name: str
    image: str | None = None
    resources: Resources | None = None
    env_vars: dict[str, str] | None = None
    plugin_config: Any = None
    reusable: Any = None
    description: str | None = None
    conn_id: str | None = None
    include: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise FlyteConfigError(
                "TaskEnvironment.name", self.name, "the name must be snake_case or kebab-case",
                'use lowercase letters, digits, "_" or "-", e.g. "spark_env"',
            )
        if self.description is not None and len(self.description) > 255:
            raise FlyteConfigError(
                "TaskEnvironment.description", self.description, "longer than 255 characters",
                "shorten the description",
            )
        if self.env_vars is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.env_vars.items()
        ):
            raise FlyteConfigError(
                "TaskEnvironment.env_vars", self.env_vars, "keys and values must be strings",
                "quote the values, e.g. {'OMP_NUM_THREADS': '4'}",
            )
        if self.resources is not None and not isinstance(self.resources, Resources):
            raise FlyteConfigError(
                "TaskEnvironment.resources", self.resources, "not a Resources object",
                'use Resources(cpu="2", memory="4Gi")',
            )
        if isinstance(self.include, str):
            self.include = (self.include,)
        self.include = tuple(self.include)
        if self.plugin_config is not None:
            entry = validate_plugin_config(self.plugin_config, field="TaskEnvironment.plugin_config")
            if self.reusable and not (entry and entry.supports_reuse):
                raise FlyteConfigError(
                    "TaskEnvironment.plugin_config",
                    type(self.plugin_config).__name__,
                    "Cannot set plugin_config when environment is reusable.",
                    "drop reusable=..., or run the plugin task in an environment of its own",
                )

    def clone_with(self, **changes: Any) -> TaskEnvironment:
        """A copy with some fields changed, as ``flyte.TaskEnvironment.clone_with``."""
        return replace(self, **changes)

    def task(self, python_callable: Callable[..., Any] | None = None, **kwargs: Any) -> TaskDecorator:
        """Flyte-style ``@env.task`` / ``@env.task(retries=2)``."""
        from airflow_provider_flyte.decorators.flyte import flyte_task

        return flyte_task(python_callable, env=self, **kwargs)


def validate_plugin_config(config: Any, *, field: str) -> registry.PluginEntry | None:
    """Check that ``config`` is a registered plugin config (templates are checked at run time)."""
    if is_template(config):
        return None
    if not isinstance(config, PluginConfig):
        raise FlyteConfigError(
            field, config, f"{type(config).__name__} is not a plugin config",
            f"use one of {', '.join(registry.registered_names())}",
        )
    return registry.find(type(config), field=field)
