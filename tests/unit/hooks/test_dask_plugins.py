"""The OpenLineage environment plugin of shared Dask workers: overlapping tasks, any end order (issue 26)."""

from __future__ import annotations

import os
import types

import pytest

from airflow_provider_flyte.hooks.dask_plugins import environ_plugin

KEY = "OPENLINEAGE_PARENT_ID"


@pytest.mark.parametrize("first_to_end", ["a", "b"])
def test_overlapping_tasks_leave_the_worker_as_they_found_it(monkeypatch, first_to_end):
    monkeypatch.setenv(KEY, "original")
    worker = types.SimpleNamespace()  # a worker process's object: the plugin keeps its state there
    a, b = environ_plugin({KEY: "ns/a/1"}, "flyte-env-a"), environ_plugin({KEY: "ns/b/2"}, "flyte-env-b")
    a.setup(worker)
    assert os.environ[KEY] == "ns/a/1"
    b.setup(worker)
    assert os.environ[KEY] == "ns/b/2"
    first, second = (a, b) if first_to_end == "a" else (b, a)
    first.teardown(worker)
    assert os.environ[KEY] == ("ns/b/2" if first is a else "ns/a/1")  # the task still running keeps its parent
    second.teardown(worker)
    assert os.environ[KEY] == "original"


def test_a_variable_that_was_unset_is_unset_again(monkeypatch):
    monkeypatch.delenv(KEY, raising=False)
    worker = types.SimpleNamespace()
    plugin = environ_plugin({KEY: "ns/a/1"}, "flyte-env-a")
    plugin.setup(worker)
    plugin.setup(worker)  # a worker that restarts its plugins sets up again: one entry, not two
    plugin.teardown(worker)
    assert KEY not in os.environ
