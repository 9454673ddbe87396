"""Fields the engines' CRDs declare: a manifest field outside them is refused before the job is created.

A real Kubernetes API server **silently drops** a custom object's field that the CRD's structural
schema does not declare (unless it sits under ``x-kubernetes-preserve-unknown-fields``): a typo in a
pod template of a RayJob, a field of a newer operator's CRD sent to an older one, a field the
provider itself got wrong would all vanish without an error. :func:`check_known_fields` walks the
final manifest against ``crd_fields.json.gz``, a compact tree of the CRDs' declared fields
(``scripts/k8s/crd_fields.py`` writes it from ``tests/support/k8s_crds``), and raises a
:class:`~airflow_provider_flyte.exceptions.FlyteConfigError` naming the field. Kinds or versions it
does not have are not checked.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

TREES = Path(__file__).with_name("crd_fields.json.gz")
#: Root fields every object has, whatever its schema says.
ROOT_FIELDS = frozenset({"apiVersion", "kind", "metadata"})


@functools.cache
def _trees() -> dict[str, Any]:
    return json.loads(gzip.decompress(TREES.read_bytes()))  # type: ignore[no-any-return]


def unknown_fields(body: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(path, value)`` of each field the CRD of ``body``'s apiVersion and kind does not declare."""
    tree = _trees().get(f"{body.get('apiVersion')}/{body.get('kind')}")
    found: list[tuple[str, Any]] = []
    if tree is not None:
        _walk(tree, body, "", found, root=True)
    return found


def _walk(tree: Any, value: Any, path: str, found: list[tuple[str, Any]], *, root: bool = False) -> None:
    if not isinstance(tree, dict):
        return  # a scalar, or anything goes
    if "[]" in tree:
        for i, item in enumerate(value if isinstance(value, list) else []):
            _walk(tree["[]"], item, f"{path}[{i}]", found)
        return
    if not isinstance(value, Mapping):
        return
    for key, item in value.items():
        child = f"{path}.{key}" if path else str(key)
        if "{}" in tree:
            _walk(tree["{}"], item, child, found)
        elif key in tree:
            _walk(tree[key], item, child, found)
        elif "*" not in tree and not (root and key in ROOT_FIELDS):
            found.append((child, item))


class _NotShown:
    """Stands for an unknown field's value in the error: a misspelled field may hold a credential."""

    def __init__(self, value: Any) -> None:
        self.type = type(value).__name__

    def __repr__(self) -> str:
        return f"a {self.type}, not shown"


def check_known_fields(body: Mapping[str, Any]) -> None:
    """Raise naming the first field the CRD does not declare (the API server would drop it without a word)."""
    unknown = unknown_fields(body)
    if unknown:
        path, value = unknown[0][0], _NotShown(unknown[0][1])
        others = f" (and {', '.join(p for p, _ in unknown[1:])})" if len(unknown) > 1 else ""
        raise FlyteConfigError(
            f"{body.get('kind')} field {path}", value,
            f"the {body.get('apiVersion')} CRD has no such field{others}: the Kubernetes API server would drop it "
            "without an error", "remove or correct it (a typo in a pod template?); fields of a newer operator "
            "need its CRD")


__all__ = ["check_known_fields", "unknown_fields"]
