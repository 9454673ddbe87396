"""Write src/airflow_provider_flyte/manifests/crd_fields.json.gz: the fields each engine's CRD declares.

A real API server silently drops a custom object's field its CRD's structural schema does not declare;
the provider refuses such a field before the create (:mod:`airflow_provider_flyte.manifests.known_fields`)
with this compact tree of the CRDs in tests/support/k8s_crds (about 12 KB gzipped instead of 3.4 MB of
YAML). Run it after updating a CRD there; tests/unit/manifests/test_known_fields.py checks the file is current.

Tree: a dict of declared properties; ``"[]"`` an array's items; ``"{}"`` a map's values
(``additionalProperties``); ``"*"`` anything (``x-kubernetes-preserve-unknown-fields``, or an object
that declares nothing); ``0`` a scalar.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "tests" / "support" / "k8s_crds"
OUT = ROOT / "src" / "airflow_provider_flyte" / "manifests" / "crd_fields.json.gz"
#: The kinds the provider creates (manifests/<engine>.py); the other CRDs there (RayCluster, DaskCluster...) are not sent.
KINDS = frozenset({"SparkApplication", "RayJob", "DaskJob", "PyTorchJob"})


def tree(schema: dict[str, Any]) -> Any:
    if schema.get("type") == "array" and "items" in schema:
        return {"[]": tree(schema["items"])}
    if "properties" in schema:
        out = {key: tree(value) for key, value in sorted(schema["properties"].items())}
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            out["*"] = "*"
        return out
    if isinstance(schema.get("additionalProperties"), dict):
        return {"{}": tree(schema["additionalProperties"])}
    if schema.get("type") == "object" or schema.get("x-kubernetes-preserve-unknown-fields"):
        return "*"
    return 0


def trees() -> dict[str, Any]:
    """``{"<group>/<version>/<Kind>": tree}`` for every served version of every CRD."""
    found: dict[str, Any] = {}
    for path in sorted(CRDS.glob("*.yaml.gz")):
        for doc in yaml.safe_load_all(gzip.decompress(path.read_bytes())):
            if not doc or doc.get("kind") != "CustomResourceDefinition" or doc["spec"]["names"]["kind"] not in KINDS:
                continue
            group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
            for version in doc["spec"]["versions"]:
                if version.get("served", True):
                    found[f"{group}/{version['name']}/{kind}"] = tree(version["schema"]["openAPIV3Schema"])
    return found


def render() -> bytes:
    return gzip.compress(json.dumps(trees(), sort_keys=True, separators=(",", ":")).encode(), mtime=0)


if __name__ == "__main__":
    OUT.write_bytes(render())
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size} bytes", file=sys.stderr)
