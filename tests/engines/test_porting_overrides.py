"""Flyte's .override(resources=..., env_vars=..., timeout=...) reach the run; nested calls run inline."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def run(dag_runner):
    return dag_runner.run("porting_overrides_dag.py", "porting_overrides")


def test_override_resources_sizes_the_ray_cluster(run):
    # one head + one worker; 1 CPU each by default, 0.5 each with the override (-> 1 CPU in all)
    assert run.states[("ray_default", -1)] == "success"
    assert run.states[("ray_resources", -1)] == "success"
    assert run.value("ray_default") == 2.0
    assert run.value("ray_resources") == 1.0


def test_override_env_vars_reach_the_dask_worker_processes(run):
    assert run.value("dask_default") == [True, "from-env"]
    assert run.value("dask_env_vars") == [True, "from-override"]


def test_override_timeout_becomes_an_execution_timeout_that_fires(run):
    assert run.states[("timed_out", -1)] == "failed"
    assert ("timed_out", -1) not in run.xcoms
    assert run.states[("in_time", -1)] == "success"
    assert run.value("in_time") == "woke"


def test_nested_calls_run_inline_sync_await_and_override(run):
    assert run.value("sync_outer") == [10, 12, "porting_overrides.sync_outer"]
    assert run.value("async_outer") == [10, 12]
    # nested calls create no Airflow tasks of their own
    assert {task for task, _ in run.states} == {
        "ray_default", "ray_resources", "dask_default", "dask_env_vars", "timed_out", "in_time",
        "sync_outer", "async_outer",
    }


def test_nested_scaling_example_sizes_the_inline_spark_run(dag_runner):
    from tests.conftest import EXAMPLE_DAGS

    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_nested_scaling.py", "example_flyte_nested_scaling",
                            run_conf={"rows": 350_000})
    assert result.state == "success", result.states
    assert result.value("scaling_controller") == {"rows": 350_000, "executors": "4"}
