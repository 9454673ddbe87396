"""Provider metadata for Airflow's ProvidersManager and the provider registries.

Static data only: Airflow, the registry and ``airflow providers list`` import this
module, so it must not import engines or touch the network.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte import __version__, registry

_ENGINES = ("spark", "ray", "dask", "pytorch")
_INTEGRATIONS = {
    "spark": ("Flyte Spark", "https://spark.apache.org/"),
    "ray": ("Flyte Ray", "https://docs.ray.io/"),
    "dask": ("Flyte Dask", "https://docs.dask.org/"),
    "pytorch": ("Flyte PyTorch Elastic", "https://pytorch.org/docs/stable/distributed.elastic.html"),
}


def _conn(conn_type: str, hook: str, name: str, host_placeholder: str, extra: dict[str, Any],
          conn_fields: dict[str, Any], hidden: tuple[str, ...] = ("schema", "login")) -> dict[str, Any]:
    relabel = {"host": "Address", "password": "Token"}
    if "login" not in hidden:
        relabel["login"] = "User ID"
    return {
        "connection-type": conn_type,
        "hook-class-name": f"airflow_provider_flyte.hooks.{hook}",
        "hook-name": name,
        "ui-field-behaviour": {
            "hidden-fields": list(hidden),
            "relabeling": relabel,
            "placeholders": {"host": host_placeholder, "port": "optional", "extra": str(extra).replace("'", '"')},
        },
        "conn-fields": conn_fields,
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated against Airflow's ``provider_info.schema.json``)."""
    return {
        "package-name": "airflow-provider-flyte",
        "name": "Flyte plugins (Spark, Ray, Dask, PyTorch Elastic)",
        "description": "flyte-sdk style distributed-compute plugins for Apache Airflow 3: "
        "run one task with Spark, Ray, Dask or PyTorch Elastic locally, on an existing cluster, or on Kubernetes.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": name, "external-doc-url": url, "tags": ["software"]}
            for name, url in _INTEGRATIONS.values()
        ],
        "operators": [
            {"integration-name": _INTEGRATIONS[e][0], "python-modules": [f"airflow_provider_flyte.operators.{e}"]}
            for e in _ENGINES
        ],
        "hooks": [
            {"integration-name": _INTEGRATIONS[e][0], "python-modules": [f"airflow_provider_flyte.hooks.{e}"]}
            for e in _ENGINES
        ],
        "connection-types": [
            _conn(
                "flyte_spark", "spark.FlyteSparkHook", "Flyte Spark",
                "spark://host:7077 or sc://host:15002",
                {"connect_timeout": 10, "use_ssl": False, "spark.executor.memory": "2g"},
                {
                    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["integer", "null"]}},
                    "use_ssl": {"label": "Use SSL (Spark Connect)", "schema": {"type": ["boolean", "null"]}},
                },
                hidden=("schema",),
            ),
            _conn(
                "flyte_ray", "ray.FlyteRayHook", "Flyte Ray",
                "ray://host:10001 or host:6379", {"namespace": "airflow"},
                {
                    "namespace": {"label": "Ray namespace", "schema": {"type": ["string", "null"]}},
                    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["integer", "null"]}},
                    "dashboard_url": {"label": "Dashboard URL", "schema": {"type": ["string", "null"]}},
                },
            ),
            _conn(
                "flyte_dask", "dask.FlyteDaskHook", "Flyte Dask",
                "tcp://host:8786", {"dashboard_link": "http://host:8787/status"},
                {
                    "dashboard_link": {"label": "Dashboard URL", "schema": {"type": ["string", "null"]}},
                    "connect_timeout": {"label": "Connect timeout (s)", "schema": {"type": ["integer", "null"]}},
                },
            ),
        ],
        "extra-links": [path for entry in registry.entries() for path in entry.link_paths],
        "task-decorators": [
            {"name": "flyte", "class-name": "airflow_provider_flyte.decorators.flyte.flyte_task"},
        ],
    }
