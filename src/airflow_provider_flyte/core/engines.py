"""The plugin registry: which hook runs which plugin config type.

Like flyte-sdk's ``TaskPluginRegistry``, lookups are by exact config type. Built-in
engines are listed by import path so that nothing engine-specific is imported until
a task actually runs. A new engine adds one line to ``_BUILTIN`` (or calls
:func:`register` from its own package).
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.exceptions import FlyteConfigError

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.base import FlyteEngineHook


@dataclass(frozen=True)
class PluginEntry:
    """One engine: its config class, the hook that runs it and whether it supports reuse."""

    config_path: str
    hook_path: str
    supports_reuse: bool = False
    #: Import paths of the engine's operator extra links (``BaseOperatorLink`` classes).
    link_paths: tuple[str, ...] = ()
    #: Module that builds the engine's Kubernetes job (``build_manifest``, ``job_state``).
    manifest_path: str | None = None
    #: Modules the engine needs at run time, and the extra that installs them.
    requires: tuple[str, ...] = ()
    extra: str | None = None

    @property
    def config_name(self) -> str:
        return self.config_path.rsplit(".", 1)[1]

    def hook_class(self) -> type[FlyteEngineHook]:
        self.check_installed()
        return _load(self.hook_path)  # type: ignore[no-any-return]

    def check_installed(self) -> None:
        """Raise Airflow's ``AirflowOptionalProviderFeatureException`` naming the pip line if the engine is missing."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if not missing:
            return
        from airflow.exceptions import AirflowOptionalProviderFeatureException

        extra = self.extra or self.config_name.lower()
        raise AirflowOptionalProviderFeatureException(
            f"{self.config_name} tasks need {', '.join(missing)}, which is not installed. "
            f'Install the extra: pip install "{DISTRIBUTION}[{extra}]"'
        )


#: The distribution name users install (``pip install "<name>[spark]"``).
DISTRIBUTION = "airflow-provider-flyte-plugins"

_BUILTIN = (
    PluginEntry(
        "airflow_provider_flyte.plugins.spark.Spark",
        "airflow_provider_flyte.hooks.spark.FlyteSparkHook",
        supports_reuse=True,
        link_paths=("airflow_provider_flyte.links.spark.SparkUILink",),
        manifest_path="airflow_provider_flyte.manifests.spark",
        requires=("pyspark",),
        extra="spark",
    ),
    PluginEntry(
        "airflow_provider_flyte.plugins.ray.RayJobConfig",
        "airflow_provider_flyte.hooks.ray.FlyteRayHook",
        supports_reuse=True,
        link_paths=("airflow_provider_flyte.links.ray.RayDashboardLink",),
        manifest_path="airflow_provider_flyte.manifests.ray",
        requires=("ray",),
        extra="ray",
    ),
    PluginEntry(
        "airflow_provider_flyte.plugins.dask.Dask",
        "airflow_provider_flyte.hooks.dask.FlyteDaskHook",
        supports_reuse=True,
        link_paths=("airflow_provider_flyte.links.dask.DaskDashboardLink",),
        manifest_path="airflow_provider_flyte.manifests.dask",
        requires=("dask", "distributed"),
        extra="dask",
    ),
    PluginEntry(
        "airflow_provider_flyte.plugins.pytorch.Elastic",
        "airflow_provider_flyte.hooks.pytorch.FlyteElasticHook",
        manifest_path="airflow_provider_flyte.manifests.pytorch",
        requires=("torch",),
        extra="pytorch",
    ),
)

_entries: dict[str, PluginEntry] = {entry.config_path: entry for entry in _BUILTIN}


def _qualname(tp: type) -> str:
    return f"{tp.__module__}.{tp.__qualname__}"


def _load(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def register(
    config_type: type,
    hook_class: type | str,
    *,
    supports_reuse: bool = False,
    link_paths: tuple[str, ...] = (),
    manifest_path: str | None = None,
    requires: tuple[str, ...] = (),
    extra: str | None = None,
) -> None:
    """Register ``hook_class`` (a class or an import path) as the runner for ``config_type``."""
    hook_path = hook_class if isinstance(hook_class, str) else _qualname(hook_class)
    _entries[_qualname(config_type)] = PluginEntry(
        _qualname(config_type), hook_path, supports_reuse, link_paths, manifest_path, requires, extra
    )


def entries() -> list[PluginEntry]:
    """Every registered engine."""
    return list(_entries.values())


def all_links() -> tuple[Any, ...]:
    """One instance of every registered engine's extra-link classes and the placements' (for the generic operator)."""
    return tuple(_load(path)() for path in all_link_paths())


#: links of placements every engine can use (the Kubernetes job and its pod)
PLACEMENT_LINK_PATHS = ("airflow_provider_flyte.links.kubernetes.KubernetesJobLink",
                        "airflow_provider_flyte.links.kubernetes.KubernetesPodLink")


def all_link_paths() -> list[str]:
    """Import paths of every extra link: each engine's, then the placements' (provider info lists them)."""
    paths = [path for entry in _entries.values() for path in entry.link_paths]
    return paths + [path for path in PLACEMENT_LINK_PATHS if path not in paths]


def registered_names() -> list[str]:
    """Class names of every registered plugin config, for error messages."""
    return sorted(entry.config_name for entry in _entries.values())


def find_by_path(config_path: str, *, field: str = "config_type") -> PluginEntry:
    """The entry registered under the config class's import path (as a task spec names it)."""
    entry = _entries.get(config_path)
    if entry is None:
        raise FlyteConfigError(
            field, config_path, "not a registered plugin config",
            f"use one of {', '.join(registered_names())}, or register the type in the process that runs the task",
        )
    return entry


def config_class(entry: PluginEntry) -> type:
    """The config dataclass of an entry (imported on demand)."""
    return _load(entry.config_path)  # type: ignore[no-any-return]


def find(config_type: type, *, field: str = "plugin_config") -> PluginEntry:
    """The entry for exactly ``config_type``; a clear error naming the registered types otherwise."""
    entry = _entries.get(_qualname(config_type))
    if entry is None:
        raise FlyteConfigError(
            field,
            config_type.__name__,
            f"{config_type.__name__} is not a registered plugin config",
            f"use one of {', '.join(registered_names())}, or register the type with "
            "airflow_provider_flyte.registry.register(ConfigType, HookClass)",
        )
    return entry
