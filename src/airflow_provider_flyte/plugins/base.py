"""The base every plugin config derives from: validation now, templates later.

A plugin config is a plain dataclass with flyteplugins' field names and defaults.
Each field is validated against its declared type when the object is built, so
bad input fails at DAG parse time. A field may instead hold a Jinja template
(``"{{ params.executors }}"``) or an ``XComArg``; such fields are validated
after Airflow renders them, by :meth:`PluginConfig.resolve`, which converts the
rendered value to the declared type (``"8"`` becomes ``8`` for an ``int``).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from typing import Any, ClassVar, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError

from airflow_provider_flyte.core.masking import is_sensitive, redacted, register_sensitive
from airflow_provider_flyte.exceptions import FlyteConfigError

C = TypeVar("C", bound="PluginConfig")

_TEMPLATE_MARKERS = ("{{", "{%")


def is_template(value: Any) -> bool:
    """True for a Jinja string or an Airflow ``XComArg``/``ResolveMixin`` (duck-typed)."""
    if isinstance(value, str):
        return any(marker in value for marker in _TEMPLATE_MARKERS)
    return hasattr(value, "resolve") and hasattr(value, "iter_references")


def contains_template(value: Any) -> bool:
    """True when ``value`` or anything nested in it (lists, dicts, configs) is a template."""
    if is_template(value):
        return True
    if isinstance(value, dict):
        return any(contains_template(k) or contains_template(v) for k, v in value.items())
    if isinstance(value, (list, tuple, set)):
        return any(contains_template(v) for v in value)
    if isinstance(value, PluginConfig):
        return any(contains_template(getattr(value, f.name)) for f in dataclasses.fields(value))  # type: ignore[arg-type]
    return False


class PluginConfig:
    """Mixin for plugin config dataclasses (``Spark``, ``RayJobConfig``, ``Dask``, ``Elastic``...)."""

    #: Short engine name used in messages ("Spark", "Ray" ...); defaults to the class name.
    engine_label: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # @dataclass keeps a __repr__ the class already has: configs print with secrets masked.
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = PluginConfig.__repr__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        self._validate(strict=True)
        register_sensitive(self)

    def __repr__(self) -> str:
        """The dataclass repr, with the values of sensitive keys (Airflow's rules) and known secrets as ``***``."""
        parts = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            if not f.repr:
                continue
            value = getattr(self, f.name)
            shown = "***" if is_sensitive(f.name) and value not in (None, "") else redacted(value, f.name)
            parts.append(f"{f.name}={shown!r}")
        return f"{type(self).__qualname__}({', '.join(parts)})"

    # -- Airflow templating -------------------------------------------------------------------
    @property
    def template_fields(self) -> tuple[str, ...]:
        """Every field is templated; Airflow renders nested configs through this attribute."""
        return tuple(f.name for f in dataclasses.fields(self))  # type: ignore[arg-type]

    # -- validation ----------------------------------------------------------------------------
    def _validate(self, *, strict: bool) -> None:
        templated = False
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if contains_template(value):
                templated = True
                continue
            if _is_untouched_default(f, value):
                continue  # a default is valid by construction: no validator to build or run at parse
            converted = _convert(type(self), f.name, value, strict=strict)
            object.__setattr__(self, f.name, converted)
        if not templated:
            self.check()

    def check(self) -> None:
        """Cross-field rules; subclasses override. Called only when no field is templated."""

    def check_reuse(self, policy: Any) -> None:
        """This engine's rules for a reused environment (``policy``: a ``ReusePolicy``); subclasses override.

        Called at parse time for a config that is not a template, once the engine table says the engine
        can be kept warm at all (:func:`airflow_provider_flyte.reuse.check_reuse`).
        """

    def check_placement(self, placement: str) -> None:
        """Refuse a placement this config cannot run on (``core.spec`` names); subclasses override.

        Called before the run with ``"local"`` when the task has no ``conn_id`` (the Airflow worker, one node).
        """

    def validated(self: C) -> C:
        """Return a copy with rendered values converted to their declared types and validated."""
        values: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = _resolve_nested(getattr(self, f.name))
            if is_template(value):
                raise FlyteConfigError(
                    f"{type(self).__name__}.{f.name}",
                    value,
                    "the template was not rendered",
                    "use this config in a Flyte operator's plugin_config, which Airflow renders at run time",
                )
            values[f.name] = _convert(type(self), f.name, value, strict=False)
        resolved = copy_config(self)
        for name, value in values.items():
            object.__setattr__(resolved, name, value)
        resolved.check()
        return resolved

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict of the config (for the spec and manifests: secrets in clear).

        For logs, pass it through :func:`airflow_provider_flyte.core.masking.redacted`.
        """
        return typing.cast(dict[str, Any], _plain(self))


def _resolve_nested(value: Any) -> Any:
    if isinstance(value, PluginConfig):
        return value.validated()
    if isinstance(value, list):
        return [_resolve_nested(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_resolve_nested(v) for v in value)
    if isinstance(value, dict):
        return {k: _resolve_nested(v) for k, v in value.items()}
    return value


def copy_config(value: Any) -> Any:
    """Copy configs and containers deeply, but keep other objects (``XComArg``...) shared.

    Airflow renders nested template fields in place; copying first keeps a config that
    several tasks share (``env.plugin_config``) pristine for the next task and run.
    """
    if isinstance(value, PluginConfig) and dataclasses.is_dataclass(value):
        new = object.__new__(type(value))
        for f in dataclasses.fields(value):
            object.__setattr__(new, f.name, copy_config(getattr(value, f.name)))
        return new
    if isinstance(value, list):
        return [copy_config(v) for v in value]
    if isinstance(value, tuple):
        return tuple(copy_config(v) for v in value)
    if isinstance(value, dict):
        return {k: copy_config(v) for k, v in value.items()}
    return value


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if is_template(value) and not isinstance(value, str):
        return repr(value)
    return value


_SCALARS = (type(None), bool, int, float, str)


def _is_untouched_default(f: dataclasses.Field[Any], value: Any) -> bool:
    """``value`` is the field's own default: ``None``/a scalar default itself, or an empty default container."""
    if f.default is not dataclasses.MISSING:
        return value is f.default and type(value) in _SCALARS
    if f.default_factory is not dataclasses.MISSING:
        return type(value) in (list, dict) and not value and f.default_factory() == value
    return False


@functools.cache
def _adapter(cls: type, name: str, strict: bool) -> TypeAdapter[Any]:
    hints = typing.get_type_hints(cls)
    config = ConfigDict(arbitrary_types_allowed=True)
    if not strict:
        # Jinja renders to strings, native rendering to numbers: accept both for str fields.
        config = ConfigDict(arbitrary_types_allowed=True, coerce_numbers_to_str=True)
    return TypeAdapter(hints[name], config=None if _is_dataclass_type(hints[name]) else config)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _convert(cls: type, name: str, value: Any, *, strict: bool) -> Any:
    if isinstance(value, bool) and _number_not_bool(typing.get_type_hints(cls)[name]):
        raise FlyteConfigError(f"{cls.__name__}.{name}", value,
                               f"a bool where a number is expected ({value} would count as {int(value)})",
                               f"pass a number, e.g. {name}=1, not True or False")
    adapter = _adapter(cls, name, strict)
    try:
        return adapter.validate_python(value, strict=None)
    except ValidationError as exc:
        raise _config_error(cls, name, value, exc) from None


def _number_not_bool(hint: Any) -> bool:
    """``int | None``, ``int | str``...: a number is wanted, and a bool is no answer (``True`` is not 1 worker)."""
    members = set(typing.get_args(hint)) if typing.get_origin(hint) in (typing.Union, types.UnionType) else {hint}
    return bool(members & {int, float}) and not members & {bool, Any}


#: How pydantic names a composite member of a union in an error's location (``function-after[...]``).
_UNION_TAG = re.compile(r"^[\w-]+\[.*\]$")


def _is_union_tag(part: Any, hint: Any) -> bool:
    """``int`` or ``Device`` in ``Resources.gpu['int']``: the union member pydantic tried, not a key."""
    return isinstance(part, str) and (bool(_UNION_TAG.match(part)) or part in re.findall(r"\w+", str(hint)))


def _config_error(cls: type, name: str, value: Any, exc: ValidationError) -> FlyteConfigError:
    first = exc.errors()[0]
    hint = typing.get_type_hints(cls)[name]
    loc = "".join(f"[{part!r}]" for part in first.get("loc", ()) if part != "[key]" and not _is_union_tag(part, hint))
    type_name = re.sub(r"\bairflow_provider_flyte(\.\w+)*\.", "", str(hint).replace("typing.", ""))
    if isinstance(hint, type):
        type_name = hint.__name__
    fix = f"pass a value of type {type_name}"
    if "dict[str, str]" in type_name:
        fix += " with string keys and values, e.g. {'spark.executor.instances': '2'}"
    return FlyteConfigError(f"{cls.__name__}.{name}{loc}", value, first["msg"], fix)
