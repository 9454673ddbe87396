"""A :class:`TaskSpec`'s plain data turned back into typed objects: its plugin config and its Resources.

The spec (``core/spec.py``) stays plain data; the typed objects it describes live in this layer.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_provider_flyte.core.spec import TaskSpec
    from airflow_provider_flyte.plugins.base import PluginConfig
    from airflow_provider_flyte.resources import Resources


def resources_of(spec: TaskSpec) -> Resources | None:
    """The environment's :class:`~airflow_provider_flyte.resources.Resources`, rebuilt."""
    if not spec.resources:
        return None
    from airflow_provider_flyte.resources import Resources

    return build_dataclass(Resources, spec.resources)  # type: ignore[no-any-return]


def config_of(spec: TaskSpec) -> PluginConfig | None:
    """The plugin config rebuilt from ``spec.config`` (validated again on construction)."""
    if spec.config_type is None:
        return None
    from airflow_provider_flyte.core import engines as registry

    cls = registry.config_class(registry.find_by_path(spec.config_type))
    return build_dataclass(cls, spec.config or {})  # type: ignore[no-any-return]


def build_dataclass(cls: type, values: Mapping[str, Any]) -> Any:
    """A config dataclass from its ``to_dict`` form; nested configs are rebuilt by their declared types."""
    kwargs = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        kwargs[f.name] = _rebuild(hints.get(f.name), values[f.name])
    return cls(**kwargs)


def _hints(cls: type) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(cls)
    except Exception:
        return {}


def _rebuild(hint: Any, value: Any) -> Any:
    import typing

    if value is None:
        return None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, Mapping):
        return build_dataclass(hint, value)
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        for arg in args:
            if isinstance(arg, type) and dataclasses.is_dataclass(arg) and isinstance(value, Mapping):
                return build_dataclass(arg, value)
            if typing.get_origin(arg) in (list, tuple) and isinstance(value, (list, tuple)):
                return _rebuild(arg, value)
        return value
    if origin in (list, tuple) and isinstance(value, (list, tuple)) and args:
        items = [_rebuild(args[0], item) for item in value]
        return items if origin is list else tuple(items)
    return value
