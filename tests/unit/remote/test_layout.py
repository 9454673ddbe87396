"""remote/layout: the run's names and keys, plain data (no store)."""

from __future__ import annotations

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.remote import layout
from airflow_provider_flyte.remote.store import StagingError


def test_staged_task_run_uri_is_the_spec_folder() -> None:
    staged = layout.StagedTask(base="s3://b/p", spec_uri="s3://b/p/runs/k/spec.json", result_uri="", error_uri="",
                               bundle_uri=None, uploaded_bundle=False, run_key="k")
    assert staged.run_uri == "s3://b/p/runs/k"


@pytest.mark.parametrize("key", ["", "a/b", "a\\b", "a..b", "-lead", "x" * (layout.RUN_KEY_MAX + 1)])
def test_unsafe_run_keys_are_refused(key: str) -> None:
    with pytest.raises(FlyteConfigError):
        layout.validate_run_key(key)


def test_run_key_for_is_valid_and_stable() -> None:
    key = layout.run_key_for("d", "t", "manual__2026-01-01T00:00:00+00:00", 2, map_index=1)
    assert layout.validate_run_key(key) == key
    assert key == layout.run_key_for("d", "t", "manual__2026-01-01T00:00:00+00:00", 2, map_index=1)
    assert "try2" in key and "map1" in key


def test_run_path_accepts_only_a_run_folder() -> None:
    assert layout.run_path("file:///s/runs/k1/spec.json", None).path.endswith("/s/runs/k1")
    assert layout.run_path("file:///s/runs/k1/", None).path.endswith("/s/runs/k1")
    with pytest.raises(StagingError, match="is not a staged run"):
        layout.run_path("file:///s/bundles/x", None)


def test_staging_section_and_its_connection() -> None:
    section = layout.staging_section({"staging": {"conn_id": "aws"}})
    assert layout.section_conn_id(section, None) == "aws"
    assert layout.section_conn_id(section, "other") == "other"
    assert layout.section_conn_id({"conn_id": ""}, None) is None
    with pytest.raises(StagingError, match="no 'staging' section"):
        layout.staging_section({})
