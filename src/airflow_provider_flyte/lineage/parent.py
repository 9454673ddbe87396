"""The Airflow task run as the parent of its engine job (OpenLineage's parent run facet).

At execute time, when the openlineage provider is installed and enabled:

* a Spark config's ``spark_conf`` gets the six ``spark.openlineage.parent*`` / ``rootParent*``
  properties when ``[openlineage] spark_inject_parent_job_info`` is on, and the listener's transport
  when ``[openlineage] spark_inject_transport_info`` is on, through the common-compat provider's
  functions, exactly as the apache-spark provider's ``SparkSubmitOperator`` does (each skips when the
  user set any key of its group);
* every other engine's processes (Ray workers, Dask workers, Elastic ranks, Kubernetes pods) get
  ``OPENLINEAGE_PARENT_ID`` / ``OPENLINEAGE_ROOT_PARENT_ID`` (``namespace/name/runId``) and
  ``OPENLINEAGE_CONTEXT`` (JSON ``{"parent": {"run", "job", "root"}}``) through the task's env vars,
  when ``spark_inject_parent_job_info`` is on (Airflow's one switch for telling child jobs their
  parent); a variable the user set wins.

With the provider missing, disabled (``[openlineage] disabled``, or no transport configured) or both
switches off, nothing is injected and nothing is logged.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from collections.abc import Mapping
from typing import Any

log = logging.getLogger(__name__)

#: The environment variables OpenLineage integrations read for their parent run (dbt-ol, the Python client).
PARENT_ID_ENV, ROOT_PARENT_ID_ENV, CONTEXT_ENV = "OPENLINEAGE_PARENT_ID", "OPENLINEAGE_ROOT_PARENT_ID", "OPENLINEAGE_CONTEXT"
ENV_NAMES = (PARENT_ID_ENV, ROOT_PARENT_ID_ENV, CONTEXT_ENV)
#: The config field holding an engine's Spark properties (``Spark.spark_conf``).
SPARK_PROPERTIES_FIELD = "spark_conf"
#: Spark properties of the OpenLineage Spark integration; a Spark Connect session may set them.
SPARK_PREFIX = "spark.openlineage."


def without_lineage_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without the parent-run variables: a warm server serves many task runs (its fingerprint,
    its own environment), each run's parent goes to that run's job only."""
    return {key: value for key, value in env.items() if key not in ENV_NAMES}


def switches() -> tuple[bool, bool]:
    """``(inject parent, inject transport)``: both ``False`` unless the provider is installed and enabled."""
    if importlib.util.find_spec("airflow.providers.openlineage") is None:
        return False, False
    from airflow.providers.openlineage import conf as ol_conf

    if ol_conf.is_disabled():
        return False, False
    return bool(ol_conf.spark_inject_parent_job_info()), bool(ol_conf.spark_inject_transport_info())


def spark_properties(properties: Mapping[str, Any], context: Any, *, parent: bool, transport: bool) -> dict[str, Any]:
    """``properties`` with the parent's and the transport's Spark properties, by the common-compat functions."""
    result = dict(properties)
    if not (parent or transport):
        return result
    from airflow.providers.common.compat.openlineage.utils.spark import (
        inject_parent_job_information_into_spark_properties,
        inject_transport_information_into_spark_properties,
    )

    if parent:
        result = inject_parent_job_information_into_spark_properties(result, context)
    if transport:
        result = inject_transport_information_into_spark_properties(result, context)
    return result


def parent_env(context: Any) -> dict[str, str]:
    """The parent-run variables for the task run in ``context``."""
    from airflow.providers.openlineage.plugins import macros

    ti = context["ti"]
    namespace, name, run_id = macros.lineage_job_namespace(), macros.lineage_job_name(ti), macros.lineage_run_id(ti)
    if hasattr(macros, "lineage_root_job_namespace"):
        root = (macros.lineage_root_job_namespace(ti), macros.lineage_root_job_name(ti), macros.lineage_root_run_id(ti))
    else:  # a provider older than its root macros: the task run is its own root, as OpenLineage reads it then
        root = (namespace, name, run_id)
    payload = {"parent": {"run": {"runId": run_id}, "job": {"namespace": namespace, "name": name},
                          "root": {"run": {"runId": root[2]}, "job": {"namespace": root[0], "name": root[1]}}}}
    return {PARENT_ID_ENV: f"{namespace}/{name}/{run_id}", ROOT_PARENT_ID_ENV: "/".join(root),
            CONTEXT_ENV: json.dumps(payload, sort_keys=True)}


def inject(config: Any, context: Any) -> tuple[Any, dict[str, str]]:
    """The config a task run is started with, and the env vars to add (under the user's: theirs win).

    A config with Spark properties gets the parent (and transport) there; any other engine's config is
    returned as is, with the parent-run variables to add to the task's env vars.
    """
    env: dict[str, str] = {}
    if config is None:
        return config, env
    parent, transport = switches()
    if not (parent or transport):
        return config, env
    names = {f.name for f in dataclasses.fields(config)} if dataclasses.is_dataclass(config) else set()
    if SPARK_PROPERTIES_FIELD in names:
        current = dict(getattr(config, SPARK_PROPERTIES_FIELD) or {})
        injected = spark_properties(current, context, parent=parent, transport=transport)
        if injected != current:
            config = dataclasses.replace(config, **{SPARK_PROPERTIES_FIELD: injected})
        return config, env
    if parent:
        try:
            env = parent_env(context)
        except Exception as exc:  # lineage is an addition: its failure never fails the user's task
            log.warning("OpenLineage: the parent run of this task could not be named, the engine job is not "
                        "linked to it: %s: %s", type(exc).__name__, exc)
    return config, env
