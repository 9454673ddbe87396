"""Cluster knobs as DAG ``Param``s, so people size clusters from the UI trigger form.

Each helper returns an Airflow ``Param`` with a JSON Schema (type, bounds or enum,
title, description, section); Airflow validates the submitted value against it before
the run is created. The DAG author wires the Param into a plugin config with a template::

    @dag(params={"executors": spark_executors(default=2, maximum=8)})
    ...
    Spark(spark_conf={"spark.executor.instances": "{{ params.executors }}"})

Only what the author exposes this way can change. Plugin-config templates see only
*declared* Params (extra keys sent in a trigger's ``conf`` are filtered out) and may
not read ``dag_run.conf`` at all: see :mod:`airflow_provider_flyte.authoring.templates`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import Param

from airflow_provider_flyte.exceptions import FlyteConfigError

SECTION = "Cluster size"

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def knob(
    default: Any,
    *,
    title: str,
    description: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    values: Sequence[Any] | None = None,
    section: str = SECTION,
    **schema: Any,
) -> Param:
    """A ``Param`` for one cluster knob; the JSON type is inferred from ``default``."""
    json_type = _JSON_TYPES.get(type(default))
    if json_type is None:
        raise TypeError(f"knob(default={default!r}): use a bool, int, float or str default")
    _check_default(title, default, minimum, maximum, values)
    spec: dict[str, Any] = {"type": json_type, "title": title, "section": section, **schema}
    if description:
        spec["description"] = description
    if minimum is not None:
        spec["minimum"] = minimum
    if maximum is not None:
        spec["maximum"] = maximum
    if values is not None:
        spec["enum"] = list(values)
    return Param(default, **spec)


def _check_default(title: str, default: Any, minimum: float | None, maximum: float | None,
                   values: Sequence[Any] | None) -> None:
    """The default is a value the Param itself accepts (else the trigger form opens with an invalid value)."""
    field = f"Param {title!r}"
    if minimum is not None and maximum is not None and minimum > maximum:
        raise FlyteConfigError(f"{field}.minimum", minimum, f"the minimum is above the maximum ({maximum})",
                               "pass minimum <= maximum")
    if values is not None and default not in values:
        raise FlyteConfigError(f"{field}.default", default, f"not one of the Param's values {list(values)}",
                               "pass a default from values=..., or add it to values")
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if numeric and (minimum is not None and default < minimum or maximum is not None and default > maximum):
        raise FlyteConfigError(f"{field}.default", default, f"outside the Param's own bounds ({minimum} to {maximum})",
                               "pass a default between minimum and maximum, or widen the bounds")


def spark_executors(default: int = 2, *, minimum: int = 1, maximum: int = 32, **kw: Any) -> Param:
    """``spark.executor.instances``."""
    return knob(default, title="Spark executors", minimum=minimum, maximum=maximum,
                description="Number of Spark executors (spark.executor.instances).", **kw)


def spark_executor_memory(
    default: str = "1g", *, values: Sequence[str] = ("512m", "1g", "2g", "4g", "8g"), **kw: Any
) -> Param:
    """``spark.executor.memory``, chosen from a list."""
    return knob(default, title="Spark executor memory", values=values,
                description="Memory per Spark executor (spark.executor.memory).", **kw)


def spark_executor_cores(default: int = 1, *, minimum: int = 1, maximum: int = 16, **kw: Any) -> Param:
    """``spark.executor.cores``."""
    return knob(default, title="Spark executor cores", minimum=minimum, maximum=maximum,
                description="Cores per Spark executor (spark.executor.cores).", **kw)


def ray_workers(default: int = 1, *, minimum: int = 0, maximum: int = 32, **kw: Any) -> Param:
    """A Ray worker group's ``replicas``."""
    return knob(default, title="Ray worker replicas", minimum=minimum, maximum=maximum,
                description="Replicas of the Ray worker group (WorkerNodeConfig.replicas).", **kw)


def dask_workers(default: int = 2, *, minimum: int = 1, maximum: int = 32, **kw: Any) -> Param:
    """``WorkerGroup.number_of_workers``."""
    return knob(default, title="Dask workers", minimum=minimum, maximum=maximum,
                description="Number of Dask workers (WorkerGroup.number_of_workers).", **kw)


def elastic_nproc_per_node(default: int = 1, *, minimum: int = 1, maximum: int = 8, **kw: Any) -> Param:
    """``Elastic.nproc_per_node``."""
    return knob(default, title="Processes per node", minimum=minimum, maximum=maximum,
                description="PyTorch processes per node (Elastic.nproc_per_node).", **kw)
