"""``manifests/known_fields``: the CRDs' declared fields, and the check that refuses any other."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.known_fields import TREES, check_known_fields, unknown_fields

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_field_trees_are_those_of_the_vendored_crds() -> None:
    found = importlib.util.spec_from_file_location("crd_fields", ROOT / "scripts" / "k8s" / "crd_fields.py")
    assert found is not None and found.loader is not None
    module = importlib.util.module_from_spec(found)
    found.loader.exec_module(module)
    assert json.loads(gzip.decompress(TREES.read_bytes())) == module.trees(), (
        "run scripts/k8s/crd_fields.py after changing tests/support/k8s_crds")


def test_unknown_fields_are_named_with_their_path_and_free_parts_are_not() -> None:
    body = {"apiVersion": "sparkoperator.k8s.io/v1beta2", "kind": "SparkApplication",
            "metadata": {"name": "x", "anything": 1},
            "spec": {"driver": {"cores": 1, "coreLimitt": "1", "template": {"spec": {"free": 1}}},
                     "sparkConf": {"any.key": "v"}, "volumes": [{"name": "v", "emptyDirr": {}}]}}
    assert unknown_fields(body) == [("spec.driver.coreLimitt", "1"), ("spec.volumes[0].emptyDirr", {})]
    with pytest.raises(FlyteConfigError, match=r"^SparkApplication field spec\.driver\.coreLimitt: the "
                                               r"sparkoperator\.k8s\.io/v1beta2 CRD has no such field \(and "
                                               r"spec\.volumes\[0\]\.emptyDirr\): .*would drop it"):
        check_known_fields(body)


def test_a_kind_it_does_not_know_is_not_checked() -> None:
    assert unknown_fields({"apiVersion": "example.com/v1", "kind": "Thing", "spec": {"x": 1}}) == []
