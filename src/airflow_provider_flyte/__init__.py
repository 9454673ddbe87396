"""airflow-provider-flyte: flyte-sdk's Spark, Ray, Dask and PyTorch Elastic plugins for Airflow 3.

The public names are loaded lazily so that importing the package (as Airflow's
provider manager and DAG processor do) stays cheap and imports no engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte._version import __version__

__all__ = ["TaskEnvironment", "Resources", "flyte_task", "ctx", "TaskContext", "FlyteConfigError", "ReusePolicy",
           "Secret", "GPU", "Device", "__version__"]

_LAZY = {
    "TaskEnvironment": "airflow_provider_flyte.environment",
    "Resources": "airflow_provider_flyte.resources",
    "flyte_task": "airflow_provider_flyte.decorators.flyte",
    "ctx": "airflow_provider_flyte.context",
    "TaskContext": "airflow_provider_flyte.context",
    "FlyteConfigError": "airflow_provider_flyte.exceptions",
    "ReusePolicy": "airflow_provider_flyte.reuse",
    "Secret": "airflow_provider_flyte.secrets",
    "GPU": "airflow_provider_flyte.resources",
    "Device": "airflow_provider_flyte.resources",
}

#: Names at flyte-sdk's top level that have no home in this provider, and the Airflow way to do
#: what they do, so that ``import airflow_provider_flyte as flyte`` ported code fails with a hint.
AIRFLOW_WAY = {
    "map": "fan out with Airflow's dynamic task mapping: `my_task.expand(x=[...])` "
           "(or `.partial(...).expand(...)`)",
    "group": "group tasks with an Airflow TaskGroup: `from airflow.sdk import task_group` (or `TaskGroup`)",
    "trace": "call a plain Python function inside the task; Airflow records the task, not its inner calls",
    "run": "run the DAG with `dag.test()`, `airflow dags test <dag_id>` or a trigger; "
           "call a task's Python function directly with `my_task.function(...)`",
    "with_runcontext": "pass run-time values as DAG params (`dag.test(run_conf={...})` or the trigger form)",
    "init": "configure Airflow and the provider's [flyte] options (airflow.cfg or AIRFLOW__FLYTE__* variables)",
    "init_from_config": "configure Airflow and the provider's [flyte] options (airflow.cfg or AIRFLOW__FLYTE__* "
                        "variables)",
    "deploy": "put the DAG file in Airflow's dags folder; the DAG processor picks it up",
    "Cron": "give the DAG a schedule: `@dag(schedule=\"0 * * * *\")`",
    "FixedRate": "give the DAG a schedule: `@dag(schedule=timedelta(...))`",
    "Trigger": "give the DAG a schedule (cron, timedelta, Asset or a Timetable)",
}

if TYPE_CHECKING:
    from airflow_provider_flyte.context import TaskContext, ctx
    from airflow_provider_flyte.decorators.flyte import flyte_task
    from airflow_provider_flyte.environment import TaskEnvironment
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.resources import GPU, Device, Resources
    from airflow_provider_flyte.reuse import ReusePolicy
    from airflow_provider_flyte.secrets import Secret


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        way = AIRFLOW_WAY.get(name)
        hint = f": flyte.{name} has no equivalent in Airflow. Fix: {way}" if way else ""
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}{hint}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
