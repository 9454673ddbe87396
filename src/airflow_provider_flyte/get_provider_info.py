"""Provider metadata for Airflow's ProvidersManager and the provider registries.

Static data only: Airflow, the registry and ``airflow providers list`` import this
module, so it must not import engines or touch the network. Everything per engine (integrations,
operators, hooks, connection forms, extra links) is read from the engine table
(:mod:`airflow_provider_flyte.core.engines`), which the connection hooks read as well.
"""

from __future__ import annotations

import json
from typing import Any

from airflow_provider_flyte._version import __version__
from airflow_provider_flyte.core import engines
from airflow_provider_flyte.core.settings import CONFIG

#: The distribution name on PyPI (the import package stays ``airflow_provider_flyte``).
DISTRIBUTION = engines.DISTRIBUTION


def connection_field_behaviour(conn_type: str) -> dict[str, Any]:
    """The ``ui-field-behaviour`` of ``conn_type``; the extra placeholder is valid JSON."""
    return engines.connection(conn_type).field_behaviour()


def _connection_type(entry: engines.PluginEntry, conn: engines.ConnectionType) -> dict[str, Any]:
    return {
        "connection-type": conn.conn_type,
        "hook-class-name": conn.hook_class_path,
        "hook-name": entry.title,
        "ui-field-behaviour": conn.field_behaviour(),
        "conn-fields": conn.conn_fields(),
    }


def _hook_modules(entry: engines.PluginEntry) -> list[str]:
    modules = [entry.hook_module]
    if entry.connection is not None:
        modules.append(entry.connection.hook_class_path.rpartition(".")[0])
    return modules


def get_provider_info() -> dict[str, Any]:
    """Return the provider's metadata (validated against Airflow's ``provider_info.schema.json``)."""
    listed = [entry for entry in engines.entries() if entry.title]
    return {
        "package-name": DISTRIBUTION,
        "name": "Flyte plugins (Spark, Ray, Dask, PyTorch Elastic)",
        "description": "flyte-sdk style distributed-compute plugins for Apache Airflow 3: "
        "run one task with Spark, Ray, Dask or PyTorch Elastic on the Airflow worker or on an existing "
        "cluster named by a connection, or (preview) on an ephemeral Kubernetes cluster per task.",
        "versions": [__version__],
        "integrations": [
            {"integration-name": e.title, "tags": ["software"], **({"external-doc-url": e.docs_url} if e.docs_url else {})}
            for e in listed
        ],
        "operators": [
            {"integration-name": e.title, "python-modules": [e.operator_module]} for e in listed if e.operator_module
        ],
        "hooks": [{"integration-name": e.title, "python-modules": _hook_modules(e)} for e in listed],
        "connection-types": [_connection_type(e, e.connection) for e in listed if e.connection is not None],
        "extra-links": engines.all_link_paths(),
        "task-decorators": [
            {"name": "flyte", "class-name": "airflow_provider_flyte.decorators.flyte.flyte_task"},
        ],
        "config": json.loads(json.dumps(CONFIG)),
        # airflow flyte check --conn-id ...: the connection check (also python -m airflow_provider_flyte check)
        "cli": ["airflow_provider_flyte.__main__.get_cli_commands"],
    }
