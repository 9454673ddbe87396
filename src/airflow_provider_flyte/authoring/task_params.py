"""Flyte's task parameters (``@env.task(...)``, ``task.override(...)``) -> Airflow's, or the environment's.

``resources=Resources(...)``, ``env_vars``, ``secrets`` ... change a clone of the :class:`TaskEnvironment`;
``timeout`` becomes ``execution_timeout``, ``short_name`` the task id and display name; Flyte parameters with no
Airflow meaning are refused, naming why (docs/porting-from-flyte.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from airflow_provider_flyte.authoring.checks import check_cache
from airflow_provider_flyte.core import field_checks
from airflow_provider_flyte.environment import TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.resources import Resources

#: Flyte's ``@env.task(...)`` / ``task.override(...)`` parameters this provider maps (docs/porting-from-flyte.md).
FLYTE_TASK_PARAMS = ("short_name", "resources", "env_vars", "timeout", "retries", "plugin_config", "reusable",
                     "secrets", "pod_template", "cache", "interruptible", "queue", "service_account")
#: Flyte parameters with no Airflow meaning, and why.
FLYTE_UNSUPPORTED = {
    "max_inline_io_bytes": "XCom's own size limits apply",
    "links": "use the operator's extra links",
    "report": "Flyte reports have no Airflow counterpart",
    "docs": "use doc_md=",
    "triggers": "schedule the DAG instead",
    "entrypoint": "every Airflow task is shown in the DAG",
    "produces_artifacts": "Flyte artifacts have no Airflow counterpart; use Assets (outlets=)",
    "task_resolver": "Airflow loads tasks from the DAG file",
    "name": "Name cannot be overridden (use task_id= or short_name=)",
    "image": "Image cannot be overridden (set it on the TaskEnvironment)",
    "interface": "Interface cannot be overridden",
}
_ENV_PARAMS = ("env_vars", "secrets", "pod_template", "reusable", "interruptible", "service_account", "kueue_queue")
_TASK_ID_RE = re.compile(r"^[\w.-]+$")


def accepted_params(operator_class: type) -> set[str]:
    """Every keyword the operator takes: its own, its bases' and ``BaseOperator``'s."""
    import inspect

    names: set[str] = set()
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                     and p.name != "self")
    return names | {"dag", "task_group", "default_args", "params", "on_failure_fail_dagrun", "multiple_outputs"}


def flyte_to_airflow(kwargs: Mapping[str, Any], env: Any, *, where: str, operator_class: type,
                     check_unknown: bool = True) -> tuple[dict[str, Any], Any]:
    """Map Flyte's task parameters onto Airflow's; returns ``(operator kwargs, environment)``.

    ``resources=Resources(...)`` (Flyte's) goes to the environment; a dict stays Airflow's
    ``BaseOperator.resources``. ``env_vars``, ``secrets``, ``pod_template``, ``reusable``,
    ``interruptible`` and ``service_account`` change a clone of the environment (Flyte's ``override`` replaces them);
    ``timeout`` becomes ``execution_timeout``; ``short_name`` the task id (when it is a valid id and no
    ``task_id`` is given) and the display name; ``cache`` is checked (only ``"disable"``); ``retries``
    and ``queue`` are Airflow's own names. Unknown names raise :class:`FlyteConfigError` listing the
    accepted ones.
    """
    out = dict(kwargs)
    changes: dict[str, Any] = {}
    if isinstance(out.get("resources"), Resources):
        changes["resources"] = out.pop("resources")
    for key in _ENV_PARAMS:
        if key in out:
            value = out.pop(key)
            if value is not None:
                changes[key] = value
    if "cache" in out:
        check_cache(out.pop("cache"), field=f"{where}.cache")
    if "timeout" in out:
        timeout = out.pop("timeout")
        if "execution_timeout" in out and timeout:
            raise FlyteConfigError(f"{where}.timeout", timeout, "timeout and execution_timeout both given",
                                   "pass one of them (Flyte's timeout becomes Airflow's execution_timeout)")
        if timeout in (None, 0) or timeout == timedelta(0):
            pass
        elif isinstance(timeout, timedelta):
            out["execution_timeout"] = timeout
        elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            out["execution_timeout"] = timedelta(seconds=timeout)
        else:
            raise FlyteConfigError(f"{where}.timeout", timeout, "not a timeout Airflow can enforce",
                                   "pass seconds (int) or a timedelta; Flyte's Timeout(max_queued_time=...) "
                                   "has no Airflow counterpart")
    if "retries" in out:  # an int, or Flyte's RetryStrategy(count=...)
        out["retries"] = field_checks.retry_count(f"{where}.retries", out["retries"])
    if "resources" in out:
        check_airflow_resources(f"{where}.resources", out["resources"])
    if "short_name" in out:
        short = out.pop("short_name")
        if short is not None:
            if not isinstance(short, str) or not short:
                raise FlyteConfigError(f"{where}.short_name", short, "not a name", 'pass a string, e.g. "train"')
            out.setdefault("task_display_name", short)
            if "task_id" not in out and _TASK_ID_RE.match(short):
                out["task_id"] = short
    if check_unknown:
        accepted = accepted_params(operator_class)
        for key in list(out):
            if key in accepted:
                continue
            if key in FLYTE_UNSUPPORTED:
                raise FlyteConfigError(f"{where}.{key}", out[key], "a Flyte parameter with no Airflow meaning",
                                       f"remove it ({FLYTE_UNSUPPORTED[key]})")
            raise FlyteConfigError(
                f"{where}.{key}", out[key], "not a Flyte or Airflow task parameter",
                f"use one of Flyte's {', '.join(FLYTE_TASK_PARAMS)} or an Airflow BaseOperator argument "
                "(task_id, retries, execution_timeout, pool, queue, ...)",
            )
    if changes:
        try:
            env = _changed_env(env, changes, where=where, name=str(out.get("task_id") or "task"))
        except FlyteConfigError as exc:
            raise _as_task_parameter(exc, where, changes) from None
    return out, env


#: The keys of Airflow's own ``BaseOperator.resources`` dict.
_AIRFLOW_RESOURCE_KEYS = ("cpus", "ram", "disk", "gpus")


def check_airflow_resources(field: str, value: Any) -> None:
    """``resources`` that is not Flyte's ``Resources``: Airflow's dict, else a clear error naming Flyte's form."""
    if value is None or (isinstance(value, dict) and set(value) <= set(_AIRFLOW_RESOURCE_KEYS)):
        return
    raise FlyteConfigError(
        field, value,
        "not Flyte's Resources, and not Airflow's BaseOperator.resources (a dict of "
        f"{', '.join(_AIRFLOW_RESOURCE_KEYS)})",
        'use Resources(cpu=2, memory="4Gi") (from airflow_provider_flyte import Resources) to size the task\'s '
        "engine and pods",
    )


def _as_task_parameter(exc: FlyteConfigError, where: str, changes: Mapping[str, Any]) -> FlyteConfigError:
    """``TaskEnvironment.env_vars: ...`` -> ``flyte_task.env_vars: ...``: name the argument the author wrote."""
    key = exc.field.partition(".")[2].split("[", 1)[0]
    if not exc.field.startswith("TaskEnvironment.") or key not in changes:
        return exc
    return FlyteConfigError(f"{where}.{exc.field.partition('.')[2]}", exc.value, exc.problem, exc.fix)


def _changed_env(env: Any, changes: dict[str, Any], *, where: str, name: str) -> TaskEnvironment:
    if env is None:
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "task"
        return TaskEnvironment(name=slug, **changes)
    if not isinstance(env, TaskEnvironment):
        raise FlyteConfigError(f"{where}.env", env, "not a TaskEnvironment", 'use TaskEnvironment(name="...")')
    reusable = changes.get("reusable", env.reusable)
    if reusable not in (None, "off"):
        for key in ("resources", "env_vars", "secrets"):
            if key in changes:
                raise FlyteConfigError(
                    f"{where}.{key}", changes[key], f"Cannot override {key} when reusable is set.",
                    "disable reusability in the same call (reusable='off') to override it",
                )
    return env.clone_with(**changes)
