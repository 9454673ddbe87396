"""Validate generated manifests against the upstream CRD schemas.

The four CRDs the manifests target are vendored, gzipped and otherwise byte-for-byte, in
``tests/support/k8s_crds/`` (provenance: ``tests/support/k8s_crds/UPSTREAM.md``), so the tests do not depend on
a folder outside the repository. ``tests/test_manifests.py`` checks them against
``../shared/k8s-crds`` where that folder exists.
"""

from __future__ import annotations

import functools
import gzip
from pathlib import Path
from typing import Any

import jsonschema
import yaml

VENDORED = Path(__file__).resolve().parent / "k8s_crds"
FILES = {
    "SparkApplication": "sparkoperator.k8s.io_sparkapplications.yaml",
    "RayJob": "ray.io_rayjobs.yaml",
    "DaskJob": "daskjob.yaml",
    "PyTorchJob": "kubeflow.org_pytorchjobs.yaml",
}
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def crd_bytes(kind: str) -> bytes:
    return gzip.decompress((VENDORED / f"{FILES[kind]}.gz").read_bytes())


@functools.cache
def schema(kind: str, api_version: str) -> dict[str, Any]:
    """The ``openAPIV3Schema`` of ``kind`` at ``api_version`` (``group/version``)."""
    crd = yaml.load(crd_bytes(kind), Loader=_Loader)  # noqa: S506 - a safe loader
    group, _, version = api_version.partition("/")
    assert crd["spec"]["group"] == group, (crd["spec"]["group"], group)
    (entry,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    return entry["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def errors(manifest: dict[str, Any]) -> list[str]:
    """Every schema violation of ``manifest`` (``path: message``); empty when it is valid."""
    validator = jsonschema.Draft4Validator(schema(manifest["kind"], manifest["apiVersion"]))
    return sorted(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(manifest))
