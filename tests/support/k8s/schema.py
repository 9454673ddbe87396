"""Structural validation of custom objects against their CRD's ``openAPIV3Schema``, as the API server does.

What a real API server does at admission for a CRD with a structural schema, reproduced:

- **Defaulting**: a missing property whose schema has ``default`` is set (inside objects that are
  present), before validation.
- **Pruning / unknown fields**: a field the schema does not declare (no ``properties`` entry, no
  ``additionalProperties`` schema, no ``x-kubernetes-preserve-unknown-fields: true`` on the
  enclosing object) is an unknown field. The server's ``fieldValidation`` decides: ``Strict``
  refuses the request (400 ``strict decoding error: unknown field "spec.foo"``), ``Warn`` and
  ``Ignore`` drop it (``Warn`` adds a ``Warning`` header). ``apiVersion``, ``kind`` and
  ``metadata`` are always allowed at the root and in ``x-kubernetes-embedded-resource`` objects.
- **Validation** (422 ``Invalid`` with one cause per violation, the field path in k8s' dotted
  form ``spec.containers[0].name``): ``type`` (``integer`` accepts no float, ``number`` accepts
  integers, ``nullable``), ``x-kubernetes-int-or-string``, ``required``, ``enum``,
  ``minimum``/``maximum`` (+ exclusive), ``minLength``/``maxLength``, ``pattern``,
  ``minItems``/``maxItems``, ``minProperties``/``maxProperties``.

Not done (never verified here): CEL rules (``x-kubernetes-validations``), ``format`` checks,
``x-kubernetes-list-type`` uniqueness, ``anyOf``/``oneOf``/``allOf``/``not`` value constraints
(structural schemas allow them only as value validations; they are skipped).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


@dataclass
class Cause:
    """One violation, in the form of a Kubernetes ``StatusCause``."""

    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueTooLong, ...
    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


@dataclass
class Result:
    causes: list[Cause] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # dotted paths of undeclared fields


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (dict, list)):
        return f'"{_json_type(value)}"'
    return str(value)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check(schema: dict[str, Any], obj: dict[str, Any], *, prune: bool) -> Result:
    """Default, then validate ``obj`` in place; with ``prune`` unknown fields are removed from it."""
    result = Result()
    _walk(schema, obj, "", result, prune=prune, root=True)
    return result


def _walk(schema: dict[str, Any], value: Any, path: str, result: Result, *, prune: bool, root: bool = False) -> None:
    if value is None:
        if schema.get("nullable"):
            return
        if "type" in schema or "properties" in schema:
            result.causes.append(Cause("FieldValueInvalid", path or "<root>",
                                       f'Invalid value: "null": {path} in body must be of type {schema.get("type", "object")}: "null"'))
        return
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            result.causes.append(Cause("FieldValueInvalid", path, f"Invalid value: {_quote(value)}: {path} in body must be "
                                       "of type integer-or-string"))
        return
    expected = schema.get("type")
    if expected and not _type_ok(expected, value):
        result.causes.append(Cause("FieldValueInvalid", path, f"Invalid value: {_quote(_json_type(value))}: {path} in body "
                                   f"must be of type {expected}: {_quote(_json_type(value))}"))
        return
    _scalar_rules(schema, value, path, result)
    if isinstance(value, dict):
        _object(schema, value, path, result, prune=prune, root=root)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                _walk(items, item, f"{path}[{index}]", result, prune=prune)


def _type_ok(expected: str, value: Any) -> bool:
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected == "boolean":
        return isinstance(value, bool)
    if expected == "string":
        return isinstance(value, str)
    if expected == "array":
        return isinstance(value, list)
    if expected == "object":
        return isinstance(value, dict)
    return True


def _object(schema: dict[str, Any], value: dict[str, Any], path: str, result: Result, *, prune: bool, root: bool) -> None:
    props: dict[str, Any] = schema.get("properties") or {}
    for key, sub in props.items():
        if key not in value and isinstance(sub, dict) and "default" in sub:
            value[key] = copy.deepcopy(sub["default"])
    for key in schema.get("required") or []:
        if key not in value:
            result.causes.append(Cause("FieldValueRequired", _join(path, key), "Required value"))
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    meta_ok = root or bool(schema.get("x-kubernetes-embedded-resource"))
    for key in list(value):
        sub_path = _join(path, key)
        if key in props:
            if isinstance(props[key], dict):
                if meta_ok and key == "metadata" and not props[key].get("properties"):
                    continue  # ObjectMeta: validated by the server itself, never pruned
                _walk(props[key], value[key], sub_path, result, prune=prune)
        elif isinstance(additional, dict):
            _walk(additional, value[key], sub_path, result, prune=prune)
        elif additional is True or preserve or meta_ok and key in ("apiVersion", "kind", "metadata"):
            continue
        else:
            result.unknown.append(sub_path)
            if prune:
                del value[key]
    for bound, op, word in (("minProperties", "<", "more"), ("maxProperties", ">", "fewer")):
        if bound in schema and (len(value) < schema[bound] if op == "<" else len(value) > schema[bound]):
            reason = "FieldValueTooMany" if op == ">" else "FieldValueInvalid"
            result.causes.append(Cause(reason, path, f"{path} in body should have at {'least' if op == '<' else 'most'} "
                                       f"{schema[bound]} properties ({word} wanted)"))


def _scalar_rules(schema: dict[str, Any], value: Any, path: str, result: Result) -> None:
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(_quote(v) for v in schema["enum"])
        result.causes.append(Cause("FieldValueNotSupported", path,
                                   f"Unsupported value: {_quote(value)}: supported values: {supported}"))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") is True and value == low):
                word = "greater than" if schema.get("exclusiveMinimum") is True else "greater than or equal to"
                result.causes.append(Cause("FieldValueInvalid", path,
                                           f"Invalid value: {value}: {path} in body should be {word} {low}"))
        if "maximum" in schema:
            high = schema["maximum"]
            if value > high or (schema.get("exclusiveMaximum") is True and value == high):
                word = "less than" if schema.get("exclusiveMaximum") is True else "less than or equal to"
                result.causes.append(Cause("FieldValueInvalid", path,
                                           f"Invalid value: {value}: {path} in body should be {word} {high}"))
    if isinstance(value, str):
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            result.causes.append(Cause("FieldValueTooLong", path, f"Too long: may not be more than {schema['maxLength']} bytes"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            result.causes.append(Cause("FieldValueInvalid", path,
                                       f"Invalid value: {_quote(value)}: {path} in body should be at least "
                                       f"{schema['minLength']} chars long"))
        pattern = schema.get("pattern")
        if pattern:
            try:
                matched = re.search(pattern, value) is not None
            except re.error:
                matched = True  # an RE2-only construct: not checked
            if not matched:
                result.causes.append(Cause("FieldValueInvalid", path,
                                           f"Invalid value: {_quote(value)}: {path} in body should match '{pattern}'"))
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            result.causes.append(Cause("FieldValueTooMany", path, f"Too many: {len(value)}: must have at most "
                                       f"{schema['maxItems']} items"))
        if "minItems" in schema and len(value) < schema["minItems"]:
            result.causes.append(Cause("FieldValueInvalid", path, f"Invalid value: {len(value)}: {path} in body should "
                                       f"have at least {schema['minItems']} items"))
