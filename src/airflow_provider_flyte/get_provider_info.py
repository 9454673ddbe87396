"""Provider metadata for Airflow's ProvidersManager and the provider registries.

Static data only: Airflow, the registry and ``airflow providers list`` import this
module, so it must not import engines or touch the network. The connection forms
(:data:`CONNECTION_FORMS`) are the single source for both the provider info and the
connection hooks' ``get_ui_field_behaviour()`` (:mod:`airflow_provider_flyte.hooks.connections`).
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_flyte import registry
from airflow_provider_flyte._version import __version__
from airflow_provider_flyte.core.settings import CONFIG

#: The distribution name on PyPI (the import package stays ``airflow_provider_flyte``).
DISTRIBUTION = "airflow-provider-flyte-plugins"

_ENGINES = ("spark", "ray", "dask", "pytorch")
_INTEGRATIONS = {
    "spark": ("Flyte Spark", "https://spark.apache.org/"),
    "ray": ("Flyte Ray", "https://docs.ray.io/"),
    "dask": ("Flyte Dask", "https://docs.dask.org/"),
    "pytorch": ("Flyte PyTorch Elastic", "https://pytorch.org/docs/stable/distributed.elastic.html"),
}

_CONNECT_TIMEOUT_FIELD = {
    "label": "Connect timeout (s)",
    "description": "Seconds the cluster's address may take to answer before a task (or Test) fails; default 10.",
    "schema": {"type": ["integer", "null"], "minimum": 1},
}

#: conn_type -> the connection form: field behaviour and extra fields, as Airflow's UI shows them.
CONNECTION_FORMS: dict[str, dict[str, Any]] = {
    "flyte_spark": {
        "hook-name": "Flyte Spark",
        "hook-class": "FlyteSparkConnectionHook",
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
            "use_ssl": {
                "label": "Use SSL (Spark Connect)",
                "description": "Connect to Spark Connect over TLS.",
                "schema": {"type": ["boolean", "null"]},
            },
        },
    },
    "flyte_ray": {
        "hook-name": "Flyte Ray",
        "hook-class": "FlyteRayConnectionHook",
        "hidden-fields": ["schema", "login"],
        "relabeling": {"host": "Address", "password": "Token"},
        "placeholders": {
            "host": "ray://host:10001 or host:6379",
            "port": "optional (10001 for ray://, 6379 for a GCS address)",
            "password": "the cluster's auth token (ray start enables token auth)",
            "extra": {"namespace": "airflow", "connect_timeout": 10},
        },
        "conn-fields": {
            "namespace": {
                "label": "Ray namespace",
                "description": "Ray namespace the task's job runs in.",
                "schema": {"type": ["string", "null"]},
            },
            "connect_timeout": _CONNECT_TIMEOUT_FIELD,
            "dashboard_url": {
                "label": "Dashboard URL",
                "description": "Dashboard link to show when the head reports one the UI cannot reach.",
                "schema": {"type": ["string", "null"]},
            },
        },
    },
    "flyte_dask": {
        "hook-name": "Flyte Dask",
        "hook-class": "FlyteDaskConnectionHook",
        "hidden-fields": ["schema", "login", "password"],
        "relabeling": {"host": "Address"},
        "placeholders": {
            "host": "tcp://host:8786",
            "port": "optional (8786)",
            "extra": {"dashboard_link": "http://host:8787/status", "connect_timeout": 10},
        },
        "conn-fields": {
            "dashboard_link": {
                "label": "Dashboard URL",
                "description": "Dashboard link to show when the scheduler's own is not reachable from the UI.",
                "schema": {"type": ["string", "null"]},
            },
            "connect_timeout": _CONNECT_TIMEOUT_FIELD,
        },
    },
}



def connection_field_behaviour(conn_type: str) -> dict[str, Any]:
    """The ``ui-field-behaviour`` of ``conn_type``; the extra placeholder is valid JSON."""
    form = CONNECTION_FORMS[conn_type]
    placeholders = dict(form["placeholders"])
    placeholders["extra"] = json.dumps(placeholders["extra"])
    return {
        "hidden-fields": list(form["hidden-fields"]),
        "relabeling": dict(form["relabeling"]),
        "placeholders": placeholders,
    }


def _connection_type(conn_type: str) -> dict[str, Any]:
    form = CONNECTION_FORMS[conn_type]
    return {
        "connection-type": conn_type,
        "hook-class-name": f"airflow_provider_flyte.hooks.connections.{form['hook-class']}",
        "hook-name": form["hook-name"],
        "ui-field-behaviour": connection_field_behaviour(conn_type),
        "conn-fields": json.loads(json.dumps(form["conn-fields"])),
    }


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated against Airflow's ``provider_info.schema.json``)."""
    return {
        "package-name": DISTRIBUTION,
        "name": "Flyte plugins (Spark, Ray, Dask, PyTorch Elastic)",
        "description": "flyte-sdk style distributed-compute plugins for Apache Airflow 3: "
        "run one task with Spark, Ray, Dask or PyTorch Elastic on the Airflow worker or on an existing "
        "cluster named by a connection, or (preview) on an ephemeral Kubernetes cluster per task.",
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
            {
                "integration-name": _INTEGRATIONS[e][0],
                "python-modules": [f"airflow_provider_flyte.hooks.{e}"]
                + (["airflow_provider_flyte.hooks.connections"] if e != "pytorch" else []),
            }
            for e in _ENGINES
        ],
        "connection-types": [_connection_type(conn_type) for conn_type in CONNECTION_FORMS],
        "extra-links": registry.all_link_paths(),
        "task-decorators": [
            {"name": "flyte", "class-name": "airflow_provider_flyte.decorators.flyte.flyte_task"},
        ],
        "config": json.loads(json.dumps(CONFIG)),
    }
