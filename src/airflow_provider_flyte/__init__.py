"""airflow-provider-flyte: flyte-sdk's Spark, Ray, Dask and PyTorch Elastic plugins for Airflow 3.

The public names are loaded lazily so that importing the package (as Airflow's
provider manager and DAG processor do) stays cheap and imports no engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte._version import __version__

__all__ = ["TaskEnvironment", "Resources", "flyte_task", "ctx", "TaskContext", "FlyteConfigError", "ReusePolicy",
           "__version__"]

_LAZY = {
    "TaskEnvironment": "airflow_provider_flyte.environment",
    "Resources": "airflow_provider_flyte.resources",
    "flyte_task": "airflow_provider_flyte.decorators.flyte",
    "ctx": "airflow_provider_flyte.context",
    "TaskContext": "airflow_provider_flyte.context",
    "FlyteConfigError": "airflow_provider_flyte.exceptions",
    "ReusePolicy": "airflow_provider_flyte.reuse",
}

if TYPE_CHECKING:
    from airflow_provider_flyte.context import TaskContext, ctx
    from airflow_provider_flyte.decorators.flyte import flyte_task
    from airflow_provider_flyte.environment import TaskEnvironment
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.resources import Resources
    from airflow_provider_flyte.reuse import ReusePolicy


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
