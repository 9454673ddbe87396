"""Value checks of the DAG author's objects (TaskEnvironment fields, operator and decorator arguments).

Each raises :class:`~airflow_provider_flyte.exceptions.FlyteConfigError` when the object is built, so a bad
value is a DAG import error instead of a failure deep inside a run.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte import registry
from airflow_provider_flyte.bundle.user_code import project_root
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig, is_template

if TYPE_CHECKING:
    from airflow_provider_flyte.secrets import Secret

#: Flyte ``cache=`` values that mean "no cache" (the only ones Airflow can honour: it has no result cache).
_NO_CACHE = (None, "disable")


def check_secret_env_vars(secrets: Sequence[Secret], env_vars: dict[str, str] | None) -> None:
    """Each secret's env var is its own: one that ``env_vars`` (or another secret) also sets would hide a value."""
    taken = {name: f"env_vars[{name!r}]" for name in env_vars or {}}
    for secret in secrets:
        name = secret.as_env_var
        if name is None:
            continue
        if name in taken:
            raise FlyteConfigError(
                "TaskEnvironment.secrets", name,
                f"the secret {secret.where} is exposed as env var {name!r}, which {taken[name]} also sets, so one "
                "of the two values would be silently dropped",
                f"give the secret another name (Secret(key={secret.key!r}, ..., as_env_var=\"OTHER_NAME\"))"
                + (f" or remove {name!r} from env_vars" if name in (env_vars or {}) else ""),
            )
        taken[name] = f"the secret {secret.where}"


def check_cache(value: Any, *, field: str) -> None:
    """Flyte's ``cache``: Airflow has no task-result cache, so only ``"disable"`` is accepted."""
    if value in _NO_CACHE:
        return
    raise FlyteConfigError(
        field, value, "Airflow has no task-result cache, so a Flyte cache policy cannot be honoured",
        'drop cache= (or use cache="disable"); to skip work already done, check for its output first '
        "(e.g. an ObjectStoragePath.exists() guard, or a ShortCircuitOperator)",
    )


def resolve_include(include: Sequence[str], declaring_file: str | None) -> tuple[str, ...]:
    """The files ``include`` names, as absolute paths: relative entries start at the declaring file's
    folder; folders are taken whole; globs are expanded. Each entry must match something inside the
    project root, else :class:`FlyteConfigError` (at parse time)."""
    if not include:
        return ()
    for item in include:
        if not isinstance(item, str) or not item:
            raise FlyteConfigError("TaskEnvironment.include", item, "include entries must be str paths",
                                   'list paths or globs, e.g. include=("templates/*.html",)')
    if declaring_file is None:
        return ()
    base = Path(declaring_file).resolve().parent
    root = project_root(declaring_file) or base
    found: list[str] = []
    for item in include:
        pattern = item if os.path.isabs(item) else str(base / item)
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(item) else (
            [pattern] if os.path.exists(pattern) else [])
        if not matches:
            raise FlyteConfigError(
                "TaskEnvironment.include", item, f"matches no file (looked for {pattern})",
                f"include paths are relative to {base}; fix the path or glob, or remove it",
            )
        for match in matches:
            path = Path(match).resolve()
            if path != root and root not in path.parents:
                raise FlyteConfigError(
                    "TaskEnvironment.include", item, f"leaves the project ({path} is outside {root})",
                    f"include only files inside {root}; put shared files in the project instead",
                )
            found.append(str(path))
    return tuple(dict.fromkeys(found))


def validate_plugin_config(config: Any, *, field: str) -> registry.PluginEntry | None:
    """Check that ``config`` is a registered plugin config (templates are checked at run time)."""
    if is_template(config):
        return None
    if isinstance(config, type) and issubclass(config, PluginConfig):
        raise FlyteConfigError(field, config.__name__, "a plugin config class, not a config",
                               f"call it: {config.__name__}(...)")
    if not isinstance(config, PluginConfig):
        raise FlyteConfigError(
            field, config, f"{type(config).__name__} is not a plugin config",
            f"use one of {', '.join(registry.registered_names())}",
        )
    return registry.find(type(config), field=field)


def check_plugin_type(field: str, config: Any, plugin_type: type | None, operator_name: str) -> None:
    """An engine operator runs its own engine's configs only (``None``: it needs one, of ``plugin_type``)."""
    if plugin_type is None:
        return
    if config is None:
        raise FlyteConfigError(
            field, None, "this operator needs a plugin config",
            f"pass plugin_config={plugin_type.__name__}(...) or env=TaskEnvironment(plugin_config=...)",
        )
    if not is_template(config) and type(config) is not plugin_type:
        raise FlyteConfigError(
            field, type(config).__name__,
            f"{operator_name} runs {plugin_type.__name__} configs",
            f"pass a {plugin_type.__name__}(...), or use the operator for "
            f"{type(config).__name__} (or @flyte_task, which picks the engine from the config)",
        )


def check_callable(field: str, python_callable: Any) -> None:
    if not callable(python_callable):
        raise FlyteConfigError(field, python_callable, "not callable", "pass a function")


def check_conn_id(field: str, conn_id: Any) -> None:
    """A connection id: a non-empty string (``None``: run on the worker)."""
    if conn_id is not None and (not isinstance(conn_id, str) or not conn_id.strip()):
        raise FlyteConfigError(field, conn_id, "not a connection id",
                               'pass the connection id as a non-empty string, e.g. conn_id="my_cluster"')
