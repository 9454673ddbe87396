"""The engine table: one :class:`PluginEntry` per engine, and lookups by config type.

Like flyte-sdk's ``TaskPluginRegistry``, lookups are by exact config type. Each entry says
everything the provider needs to know about one engine, by import path, so that nothing
engine-specific is imported until a task actually runs: its config class and hook, the placements
it supports, its connection type (form fields, accepted types, default ports), the extra that
installs it, its Kubernetes manifest module, its extra links, its warm server and whether it can
be kept warm. Provider info (``get_provider_info.py``), the connection forms
(``hooks/connections.py``), the runner and the reuse checks all read this table. A new engine adds
one entry to :data:`BUILTIN` (or calls :func:`register` from its own package); its own rules live
on its config class (:meth:`~airflow_provider_flyte.plugins.base.PluginConfig.check_reuse`).

A core module: it imports no hook, runner or engine.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: The distribution name users install (``pip install "<name>[spark]"``).
DISTRIBUTION = "airflow-provider-flyte-plugins"
#: The placements an engine supports unless its entry says otherwise.
DEFAULT_PLACEMENTS = ("local",)


@dataclass(frozen=True)
class ConnectionType:
    """An engine's Airflow connection type: what the form shows, and how a task reads the connection."""

    conn_type: str
    #: The connection hook class Airflow builds from a connection id alone (form, **Test** button).
    hook_class_path: str
    #: Connection types the engine accepts -> the URL scheme used when ``host`` has none.
    accepted_conn_types: Mapping[str, str]
    #: URL scheme -> port used when neither ``host`` nor ``port`` gives one.
    default_ports: Mapping[str, int]
    #: The form: ``hidden-fields``, ``relabeling``, ``placeholders`` (``extra`` as a dict) and ``conn-fields``.
    form: Mapping[str, Any]

    @property
    def default_conn_name(self) -> str:
        return f"{self.conn_type}_default"

    def field_behaviour(self) -> dict[str, Any]:
        """The form's ``ui-field-behaviour`` (provider info's shape); the extra placeholder is valid JSON."""
        placeholders = dict(self.form.get("placeholders", {}))
        if "extra" in placeholders:
            placeholders["extra"] = json.dumps(placeholders["extra"])
        return {"hidden-fields": list(self.form.get("hidden-fields", [])),
                "relabeling": dict(self.form.get("relabeling", {})), "placeholders": placeholders}

    def conn_fields(self) -> dict[str, Any]:
        """The form's extra fields, as plain JSON data."""
        return json.loads(json.dumps(self.form.get("conn-fields", {})))  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PluginEntry:
    """One engine: its config class, its hook, where it runs, how it is installed and connected."""

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
    #: The placements the engine supports (each one module of the hook's package, named after it).
    placements: tuple[str, ...] = DEFAULT_PLACEMENTS
    #: Its connection type for existing clusters (``None``: it runs on no existing cluster).
    connection: ConnectionType | None = None
    #: The engine's name in messages ("Spark"); ``Flyte <label>`` is its integration's and connection form's title.
    label: str | None = None
    #: The engine's documentation, for provider info.
    docs_url: str | None = None
    #: Module of the engine's operator (provider info lists it).
    operator_module: str | None = None
    #: Module that starts the engine's warm server (``warm/servers/<engine>.py``).
    warm_server: str | None = None

    @property
    def config_name(self) -> str:
        return self.config_path.rsplit(".", 1)[1]

    @property
    def title(self) -> str | None:
        """Provider info's integration name and the connection form's hook name ("Flyte Spark")."""
        return f"Flyte {self.label}" if self.label else None

    @property
    def hook_module(self) -> str:
        return self.hook_path.rpartition(".")[0]

    @property
    def install_hint(self) -> str:
        """The pip line that installs the engine."""
        return f'pip install "{DISTRIBUTION}[{self.extra or self.config_name.lower()}]"'

    def hook_class(self) -> Any:
        """The engine's hook class (imported on demand): a :class:`~airflow_provider_flyte.hooks.base.FlyteEngineHook`."""
        self.check_installed()
        return load(self.hook_path)

    def check_installed(self) -> None:
        """Raise Airflow's ``AirflowOptionalProviderFeatureException`` naming the pip line if the engine is missing."""
        missing = [name for name in self.requires if importlib.util.find_spec(name) is None]
        if not missing:
            return
        from airflow.exceptions import AirflowOptionalProviderFeatureException

        raise AirflowOptionalProviderFeatureException(
            f"{self.config_name} tasks need {', '.join(missing)}, which is not installed. "
            f"Install the extra: {self.install_hint}"
        )


_P = "airflow_provider_flyte"
_ALL_PLACEMENTS = ("local", "attach", "warm", "in_cluster", "kubernetes")
_CONNECT_TIMEOUT_FIELD = {
    "label": "Connect timeout (s)",
    "description": "Seconds the cluster's address may take to answer before a task (or Test) fails; default 10.",
    "schema": {"type": ["integer", "null"], "minimum": 1},
}


def _text_field(label: str, description: str) -> dict[str, Any]:
    return {"label": label, "description": description, "schema": {"type": ["string", "null"]}}


#: The built-in engines, in the order provider info lists them.
BUILTIN = (
    PluginEntry(
        f"{_P}.plugins.spark.Spark", f"{_P}.hooks.spark.FlyteSparkHook", supports_reuse=True,
        link_paths=(f"{_P}.links.spark.SparkUILink",), manifest_path=f"{_P}.manifests.spark",
        requires=("pyspark",), extra="spark", placements=_ALL_PLACEMENTS,
        label="Spark", docs_url="https://spark.apache.org/", operator_module=f"{_P}.operators.spark",
        warm_server=f"{_P}.warm.servers.spark",
        connection=ConnectionType(
            "flyte_spark", f"{_P}.hooks.connections.FlyteSparkConnectionHook",
            accepted_conn_types={"flyte_spark": "spark", "spark": "spark", "spark_connect": "sc"},
            default_ports={"spark": 7077, "sc": 15002},
            form={
                "hidden-fields": ["schema"],
                "relabeling": {"host": "Address", "login": "User ID", "password": "Token"},
                "placeholders": {
                    "host": "spark://host:7077 or sc://host:15002",
                    "port": "optional (7077 for spark://, 15002 for sc://)",
                    "login": "Spark Connect user_id (optional)",
                    "password": "Spark Connect bearer token (optional)",
                    "extra": {"connect_timeout": 10, "use_ssl": False, "spark.executor.memory": "2g"},
                },
                "conn-fields": {
                    "connect_timeout": _CONNECT_TIMEOUT_FIELD,
                    "use_ssl": {"label": "Use SSL (Spark Connect)", "description": "Connect to Spark Connect over TLS.",
                                "schema": {"type": ["boolean", "null"]}},
                },
            }),
    ),
    PluginEntry(
        f"{_P}.plugins.ray.RayJobConfig", f"{_P}.hooks.ray.FlyteRayHook", supports_reuse=True,
        link_paths=(f"{_P}.links.ray.RayDashboardLink",), manifest_path=f"{_P}.manifests.ray",
        requires=("ray",), extra="ray", placements=_ALL_PLACEMENTS,
        label="Ray", docs_url="https://docs.ray.io/", operator_module=f"{_P}.operators.ray",
        warm_server=f"{_P}.warm.servers.ray",
        connection=ConnectionType(
            "flyte_ray", f"{_P}.hooks.connections.FlyteRayConnectionHook",
            accepted_conn_types={"flyte_ray": "gcs"}, default_ports={"ray": 10001, "gcs": 6379},
            form={
                "hidden-fields": ["schema", "login"],
                "relabeling": {"host": "Address", "password": "Token"},
                "placeholders": {
                    "host": "ray://host:10001 or host:6379",
                    "port": "optional (10001 for ray://, 6379 for a GCS address)",
                    "password": "the cluster's auth token (ray start enables token auth)",
                    "extra": {"namespace": "airflow", "connect_timeout": 10},
                },
                "conn-fields": {
                    "namespace": _text_field("Ray namespace", "Ray namespace the task's job runs in."),
                    "connect_timeout": _CONNECT_TIMEOUT_FIELD,
                    "dashboard_url": _text_field(
                        "Dashboard URL", "Dashboard link to show when the head reports one the UI cannot reach."),
                },
            }),
    ),
    PluginEntry(
        f"{_P}.plugins.dask.Dask", f"{_P}.hooks.dask.FlyteDaskHook", supports_reuse=True,
        link_paths=(f"{_P}.links.dask.DaskDashboardLink",), manifest_path=f"{_P}.manifests.dask",
        requires=("dask", "distributed"), extra="dask", placements=_ALL_PLACEMENTS,
        label="Dask", docs_url="https://docs.dask.org/", operator_module=f"{_P}.operators.dask",
        warm_server=f"{_P}.warm.servers.dask",
        connection=ConnectionType(
            "flyte_dask", f"{_P}.hooks.connections.FlyteDaskConnectionHook",
            accepted_conn_types={"flyte_dask": "tcp"}, default_ports={"tcp": 8786, "tls": 8786},
            form={
                "hidden-fields": ["schema", "login", "password"],
                "relabeling": {"host": "Address"},
                "placeholders": {
                    "host": "tcp://host:8786",
                    "port": "optional (8786)",
                    "extra": {"dashboard_link": "http://host:8787/status", "connect_timeout": 10},
                },
                "conn-fields": {
                    "dashboard_link": _text_field(
                        "Dashboard URL", "Dashboard link to show when the scheduler's own is not reachable from the UI."),
                    "connect_timeout": _CONNECT_TIMEOUT_FIELD,
                },
            }),
    ),
    PluginEntry(
        f"{_P}.plugins.pytorch.Elastic", f"{_P}.hooks.pytorch.FlyteElasticHook",
        manifest_path=f"{_P}.manifests.pytorch", requires=("torch",), extra="pytorch",
        placements=("local", "in_cluster", "kubernetes"),
        label="PyTorch Elastic", docs_url="https://pytorch.org/docs/stable/distributed.elastic.html",
        operator_module=f"{_P}.operators.pytorch",
    ),
)

_entries: dict[str, PluginEntry] = {entry.config_path: entry for entry in BUILTIN}


def qualname(tp: type) -> str:
    """``module.QualName`` of a class: the key an entry is registered under."""
    return f"{tp.__module__}.{tp.__qualname__}"


def load(path: str) -> Any:
    """The object at a dotted import path (``pkg.module.Name``)."""
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def register(config_type: type, hook_class: type | str, **fields: Any) -> PluginEntry:
    """Register ``hook_class`` (a class or an import path) as the runner for ``config_type``.

    ``fields`` are the other :class:`PluginEntry` fields (``placements``, ``supports_reuse``,
    ``connection``, ``link_paths``, ``requires``, ``extra``...). Registering a type again replaces its entry.
    """
    hook_path = hook_class if isinstance(hook_class, str) else qualname(hook_class)
    entry = PluginEntry(qualname(config_type), hook_path, **fields)
    _entries[entry.config_path] = entry
    read_entry = getattr(hook_class, "read_entry", None)  # a hook class defined before its entry
    if callable(read_entry):
        read_entry(entry)
    return entry


def unregister(config_type: type) -> None:
    """Remove ``config_type``'s entry (a no-op when it has none)."""
    _entries.pop(qualname(config_type), None)


def entries() -> list[PluginEntry]:
    """Every registered engine."""
    return list(_entries.values())


def connections() -> list[ConnectionType]:
    """Every registered engine's connection type."""
    return [entry.connection for entry in _entries.values() if entry.connection is not None]


def connection(conn_type: str) -> ConnectionType:
    """The connection type named ``conn_type`` (``KeyError`` when no engine declares it)."""
    for found in connections():
        if found.conn_type == conn_type:
            return found
    raise KeyError(conn_type)


def all_links() -> tuple[Any, ...]:
    """One instance of every registered engine's extra-link classes and the placements' (for the generic operator)."""
    return tuple(load(path)() for path in all_link_paths())


#: links of placements every engine can use (the Kubernetes job and its pod)
PLACEMENT_LINK_PATHS = (f"{_P}.links.kubernetes.KubernetesJobLink", f"{_P}.links.kubernetes.KubernetesPodLink")


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


def lookup(config_type: type) -> PluginEntry | None:
    """The entry for exactly ``config_type``, or ``None``."""
    return _entries.get(qualname(config_type))


def config_class(entry: PluginEntry) -> type:
    """The config dataclass of an entry (imported on demand)."""
    return load(entry.config_path)  # type: ignore[no-any-return]


def find(config_type: type, *, field: str = "plugin_config") -> PluginEntry:
    """The entry for exactly ``config_type``; a clear error naming the registered types otherwise."""
    entry = lookup(config_type)
    if entry is None:
        raise FlyteConfigError(
            field,
            config_type.__name__,
            f"{config_type.__name__} is not a registered plugin config",
            f"use one of {', '.join(registered_names())}, or register the type with "
            "airflow_provider_flyte.registry.register(ConfigType, HookClass)",
        )
    return entry

