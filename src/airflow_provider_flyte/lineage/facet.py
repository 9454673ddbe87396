"""The operator's own OpenLineage run facet: what ran where (docs/lineage.md).

This module imports ``openlineage`` (its facet base classes): only the operator's
``get_openlineage_facets_on_*`` methods import it, when the openlineage listener asks, never at DAG parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attr
from openlineage.client.facet_v2 import RunFacet

#: The facet's key in the run's facets.
FACET_NAME = "flyte"
_SCHEMA_URL = "https://github.com/flyteorg/airflow-provider-flyte/blob/main/docs/lineage.md#the-flyte-run-facet"


@attr.define
class FlyteRunFacet(RunFacet):
    """What a Flyte task ran: the engine, the placement, the cluster's size and the engine's own job.

    :param engine: ``Spark``, ``Ray``, ``Dask`` or ``Elastic``.
    :param placement: ``local``, ``attach``, ``warm`` or ``kubernetes`` (``None``: not chosen yet).
    :param clusterSize: the config's size (``executors``, ``workers``, ``nodes``, ``processesPerNode``).
    :param job: the engine job's identity (``sparkApplicationId``, ``rayJobId``, ``daskSchedulerAddress``,
        Kubernetes ``kind``/``namespace``/``name``/``uid``).
    """

    engine: str
    placement: str | None = None
    clusterSize: dict[str, Any] = attr.field(factory=dict)  # noqa: N815 (OpenLineage's camelCase)
    job: dict[str, Any] = attr.field(factory=dict)

    _additional_skip_redact = ["engine", "placement", "clusterSize", "job"]

    @staticmethod
    def _get_schema() -> str:
        return _SCHEMA_URL


def cluster_size(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The size a config asks for, read from its plain form (``PluginConfig.to_dict()``)."""
    if not config:
        return {}
    size: dict[str, Any] = {}
    spark_conf = config.get("spark_conf")
    if isinstance(spark_conf, Mapping) and spark_conf.get("spark.executor.instances") is not None:
        size["executors"] = int(spark_conf["spark.executor.instances"])
    groups = config.get("worker_node_config")
    if isinstance(groups, list):
        size["workers"] = sum(int(group.get("replicas") or 0) for group in groups if isinstance(group, Mapping))
    workers = config.get("workers")
    if isinstance(workers, Mapping) and workers.get("number_of_workers") is not None:
        size["workers"] = int(workers["number_of_workers"])
    if config.get("nnodes") is not None:
        size["nodes"] = config["nnodes"]
    if config.get("nproc_per_node") is not None:
        size["processesPerNode"] = int(config["nproc_per_node"])
    return size


def operator_lineage(*, engine: str, placement: str | None, config: Mapping[str, Any] | None,
                     job: Mapping[str, Any]) -> Any:
    """An ``OperatorLineage`` holding only the run facet: the listener adds the task's inlets and outlets."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    facet = FlyteRunFacet(engine=engine, placement=placement, clusterSize=cluster_size(config), job=dict(job))
    return OperatorLineage(run_facets={FACET_NAME: facet})
