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

#: ``[flyte]`` options the provider reads (``airflow config get-value flyte <option>``).
CONFIG: dict[str, Any] = {
    "flyte": {
        "description": "Settings of the Flyte plugins provider (Spark, Ray, Dask, PyTorch Elastic).",
        "options": {
            "code_bundle": {
                "description": "Ship the task's code (the DAG folder or TaskEnvironment.include) to existing "
                "clusters as a code bundle. Set to False when the code is installed on the cluster already.",
                "version_added": "0.1.0",
                "type": "boolean",
                "example": "False",
                "default": "True",
            },
            "bundle_max_bytes": {
                "description": "Largest code bundle, in bytes, that a task may build; a larger project root "
                "fails the task with the biggest files named. Also read from AIRFLOW__FLYTE__BUNDLE_MAX_BYTES.",
                "version_added": "0.1.0",
                "type": "integer",
                "example": "209715200",
                "default": "104857600",
            },
            "staging_uri": {
                "description": "Object-store base URI where staged remote runs put their code bundles and "
                "results, e.g. s3://bucket/prefix. Empty: nothing is staged.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://my-bucket/flyte-staging",
                "default": "",
            },
            "staging_conn_id": {
                "description": "Airflow connection used to reach staging_uri (e.g. an aws connection). "
                "Empty: the object store's default credentials.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "aws_default",
                "default": "",
            },
            "warm_dir": {
                "description": "State folder of the warm engine servers on this machine (ReusePolicy; "
                "docs/warm-engines.md). Empty: <tmp>/flyte-warm-<uid>.",
                "version_added": "0.1.0", "type": "string", "example": "/var/lib/airflow/flyte-warm", "default": "",
            },
            "warm_ttl_override_s": {
                "description": "Test/ops knob: replaces idle_ttl and scaledown_ttl (seconds) of warm servers started "
                "from now on, below Flyte's 30 s minimum if need be. Empty: the ReusePolicy's values.",
                "version_added": "0.1.0", "type": "float", "example": "5", "default": "",
            },
            "kubernetes_namespace": {
                "description": "Namespace of Kubernetes jobs when the kubernetes connection names none.",
                "version_added": "0.1.0", "type": "string", "example": "airflow-jobs", "default": "",
            },
            "kubernetes_deferrable": {
                "description": "Wait for Kubernetes jobs in the triggerer (True) or in the worker (False).",
                "version_added": "0.1.0", "type": "boolean", "example": "False", "default": "True",
            },
            "kubernetes_startup_timeout": {
                "description": "Seconds a Kubernetes job may take to get running before the task fails with the reason.",
                "version_added": "0.1.0", "type": "float", "example": "600", "default": "300",
            },
            "kubernetes_keep_failed_s": {
                "description": "Keep a failed Kubernetes job this many seconds for debugging (0: delete it at once).",
                "version_added": "0.1.0", "type": "float", "example": "3600", "default": "0",
            },
            "kubernetes_service_account": {
                "description": "Service account of a Kubernetes job's pods when neither the task (TaskEnvironment("
                               "service_account=...)) nor the connection's extra service_account names one.",
                "version_added": "0.1.0", "type": "string", "example": "flyte-jobs", "default": "",
            },
            "kubernetes_interruptible_tolerations": {
                "description": "JSON list of tolerations added to the pods of an interruptible task's job "
                               "(a Spark driver excepted, as in Flyte).",
                "version_added": "0.1.0", "type": "string",
                "example": '[{"key": "spot", "operator": "Exists", "effect": "NoSchedule"}]', "default": "",
            },
            "kubernetes_interruptible_node_selector": {
                "description": "JSON object of node labels required by the pods of an interruptible task's job "
                               "(a Spark driver excepted).",
                "version_added": "0.1.0", "type": "string", "example": '{"node-pool": "spot"}', "default": "",
            },
            "kubernetes_object_url": {
                "description": "Extra-link template for a task's Kubernetes job ({name}, {namespace}, {conn_id}, {kind}).",
                "version_added": "0.1.0", "type": "string",
                "example": "https://dashboard.example/#/customresourcedefinition/{kind}/{namespace}/{name}",
                "default": "",
            },
            "kubernetes_pod_url": {
                "description": "Extra-link template for the job's driver / head / rank-0 pod ({pod} where the operator "
                "names it, else {selector}; also {name}, {namespace}, {conn_id}, {kind}).",
                "version_added": "0.1.0", "type": "string",
                "example": "https://dashboard.example/#/pod/{namespace}/{pod}", "default": "",
            },
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
