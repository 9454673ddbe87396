"""Templates in a plugin config or ``env_vars``: scanning, the checks at parse time, declared-Params-only rendering.

Plugin configs and ``TaskEnvironment.env_vars`` render against declared Params only (never the extra keys of
a trigger's ``conf``), may read Variables and Connections (whose rendered values are masked), and may not read
``dag_run.conf`` or Airflow's configuration.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig, is_template

ENV_VARS_FIELD = "TaskEnvironment.env_vars"
#: ``dag_run.conf``: a trigger's free-form conf, which the trigger form does not validate.
_RUN_CONF = re.compile(r"\bdag_run\b[^}]*\bconf\b")
#: ``conf.x`` / ``conf[...]`` on its own: Airflow's configuration (it holds the metadata DB's URL, keys ...).
_AIRFLOW_CONF = re.compile(r"(?<![.\w])conf\s*[.\[]")
#: ``var.value.x`` / ``var.json.x`` / ``conn.x...``: a Variable or a Connection, whose rendering is secret.
_SECRET_SOURCE = re.compile(r"(?<![.\w])(?:var|conn)\s*\.")
#: ``params.x`` / ``params["x"]`` in a template; ``params.get(...)`` (a method call) is not a reference.
_PARAM_REF = re.compile(r"\bparams\s*(?:\.\s*(\w+)\b(?!\s*\()|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def check_templates(field: str, value: Any) -> None:
    """Templates in a plugin config or ``env_vars`` may read declared Params, Variables and Connections only."""
    for template in string_templates(value):
        if _RUN_CONF.search(template):
            raise FlyteConfigError(
                field, template, f"{_templates_of(field)} may not read dag_run.conf",
                "declare a Param (e.g. airflow_provider_flyte.params.spark_executors()) and use "
                "{{ params.<name> }}, so the trigger form validates the value",
            )
        if _AIRFLOW_CONF.search(template):
            raise FlyteConfigError(
                field, template, f"{_templates_of(field)} may not read Airflow's configuration (conf)",
                "put the value in a Variable and use {{ var.value.<name> }} (masked in logs), or declare a Param "
                "and use {{ params.<name> }}",
            )


def _templates_of(field: str) -> str:
    return "env_vars templates" if field == ENV_VARS_FIELD else "plugin config templates"


def _a_template_of(field: str) -> str:
    return "an env_vars template" if field == ENV_VARS_FIELD else "a plugin config template"


def check_conn_id_not_templated(field: str, conn_id: str | None) -> None:
    """``conn_id`` picks where the task runs when the DAG is parsed: a template there would be a literal id."""
    if conn_id is not None and is_template(conn_id):
        raise FlyteConfigError(
            field, conn_id, "conn_id is not templated: it is read as a connection id when the DAG is parsed",
            'write the connection id itself, e.g. conn_id="my_cluster"; to choose a cluster per run, make one task '
            "per connection and pick one with a @task.branch that reads the Param",
        )


def check_declared_params(field: str, value: Any, declared: set[str]) -> None:
    """At DAG parse: a ``{{ params.x }}`` in ``value`` needs ``x`` declared (only declared Params render)."""
    names = sorted(param_names(value) - declared)
    if names:
        raise FlyteConfigError(
            field, names, f"{_a_template_of(field)} uses a Param the DAG does not declare",
            "declare it, e.g. @dag(params={'n': Param(2, type='integer')}); plugin configs see only declared "
            "Params, never extra keys of a trigger's conf",
        )


def param_names(value: Any) -> set[str]:
    """The Params the templates in ``value`` name (``params.x`` / ``params["x"]``)."""
    return {a or b for t in string_templates(value) for a, b in _PARAM_REF.findall(t)}


def rendered_secrets(original: Any, rendered: Any) -> Iterator[Any]:
    """What each ``{{ var.* }}`` / ``{{ conn.* }}`` template of ``original`` rendered to in ``rendered``."""
    if isinstance(original, str):
        if is_template(original) and _SECRET_SOURCE.search(original):
            yield rendered
    elif isinstance(original, PluginConfig):
        for name in original.template_fields:
            yield from rendered_secrets(getattr(original, name), getattr(rendered, name, None))
    elif isinstance(original, dict) and isinstance(rendered, dict):
        for key, item in original.items():
            yield from rendered_secrets(item, rendered.get(key))
    elif isinstance(original, (list, tuple)) and isinstance(rendered, (list, tuple)):
        for item, done in zip(original, rendered, strict=False):
            yield from rendered_secrets(item, done)


@contextlib.contextmanager
def undeclared_params_named(field: str, value: Any, context: Any) -> Iterator[None]:
    """Jinja's ``UndefinedError`` while rendering ``value`` -> the error naming the undeclared Param."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ != "UndefinedError":  # jinja2's; only that one has a known cause here
            raise
        raise undeclared_params_error(field, value, context["params"], exc) from None


def string_templates(value: Any) -> list[str]:
    """Every string template in ``value`` (a plugin config's template fields, dicts, lists, tuples)."""
    if isinstance(value, str):
        return [value] if is_template(value) else []
    if isinstance(value, PluginConfig):
        return [t for name in value.template_fields for t in string_templates(getattr(value, name))]
    if isinstance(value, dict):
        return [t for item in value.values() for t in string_templates(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in string_templates(item)]
    return []


def undeclared_params_error(field: str, config: Any, declared: Mapping[str, Any], exc: Exception) -> FlyteConfigError:
    """A plugin config template that names a Param the DAG does not declare (jinja's ``UndefinedError``)."""
    names = sorted(param_names(config) - set(declared))
    value = names if names else str(exc)
    return FlyteConfigError(
        field, value, f"{_a_template_of(field)} uses a Param the DAG does not declare ({exc})",
        "declare it, e.g. @dag(params={'n': Param(2, type='integer')}); plugin configs see only declared "
        "Params, never extra keys of a trigger's conf",
    )


def declared_param_names(task: Any) -> set[str]:
    """The Params the task's DAG or the task itself declares."""
    declared: set[str] = set()
    for holder in (getattr(task, "dag", None), task):
        params = getattr(holder, "params", None)
        if params:
            declared.update(params.keys())
    return declared


def declared_params_only(context: Mapping[str, Any], task: Any) -> Any:
    """A copy of ``context`` whose ``params`` holds only Params the DAG or task declares.

    ``context["params"]`` also carries any extra key sent in a trigger's ``conf``; engine
    settings must never come from those.
    """
    declared = declared_param_names(task)
    restricted = dict(context)
    params = context.get("params") or {}
    restricted["params"] = {key: value for key, value in params.items() if key in declared}
    return restricted


def nested_xcom_args(value: Any) -> list[Any]:
    """The ``XComArg``s nested in a plugin config (Airflow looks only into containers and operators)."""
    found: list[Any] = []
    if is_template(value) and not isinstance(value, str):
        found.append(value)
    elif isinstance(value, PluginConfig):
        for name in value.template_fields:
            found += nested_xcom_args(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found += nested_xcom_args(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found += nested_xcom_args(item)
    return found
