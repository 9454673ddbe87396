"""Params from the trigger form drive engines, validated before the run; nothing else gets through."""

from __future__ import annotations

import pytest

from tests.conftest import EXAMPLE_DAGS


def expected_ray_cpus(workers: int) -> int:
    """The local Ray node's CPUs for the example: head (1) + 1 per worker, capped to this machine."""
    import os

    return min(1 + workers, len(os.sched_getaffinity(0)))


def test_trigger_params_reach_every_live_engine(dag_runner):
    conf = {"executors": 5, "executor_memory": "1g", "ray_workers": 2, "dask_workers": 3, "nproc_per_node": 2}
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_cluster_params.py", run_conf=conf)
    assert set(result.states.values()) == {"success"}, result.states
    spark = result.value("spark_sized")
    assert spark["spark.executor.instances"] == "5"
    assert spark["spark.executor.memory"] == "1g"
    assert result.value("dask_sized") == {"workers": 3}
    assert result.value("elastic_sized") == {"world_size": 2}
    ray = result.value("ray_sized")
    assert ray["workers"] == 2  # the Param, not the default (1)
    assert ray["cpus"] == expected_ray_cpus(workers=2)


def test_out_of_range_param_is_refused_before_any_task_runs(dag_runner):
    from airflow.sdk.exceptions import ParamValidationError

    dag = dag_runner.load(EXAMPLE_DAGS / "example_flyte_cluster_params.py")
    with pytest.raises(ParamValidationError, match="executors"):
        dag_runner.run_dag(dag, run_conf={"executors": 99})


def test_conf_keys_that_are_not_params_do_not_reach_the_engine(dag_runner):
    result = dag_runner.run("params_guard_dag.py", run_conf={"executors": 3, "java_opts": "-Dflyte.hacked=1"})
    assert result.state == "success"
    value = result.value("live_conf")
    assert value["instances"] == "3"
    assert "-Dflyte.safe=1" in value["java_opts"]
    assert "hacked" not in value["java_opts"]
    assert value["task_saw_extra_key"] is True  # Airflow passes it to the task; the engine never sees it


def test_plugin_config_reading_dag_run_conf_is_an_import_error():
    from pathlib import Path

    from airflow.dag_processing.dagbag import BundleDagBag

    folder = Path(__file__).parents[1] / "support" / "bad_dags"
    bag = BundleDagBag(dag_folder=str(folder / "conf_in_plugin_config.py"), bundle_path=folder)
    (error,) = bag.import_errors.values()
    assert "plugin config templates may not read dag_run.conf" in error
    assert "Fix: declare a Param" in error


def test_scaling_controller_example_uses_the_computed_executor_count(dag_runner):
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_scaling_controller.py", run_conf={"rows": 350_000})
    assert result.state == "success", result.states
    assert result.value("scaling_controller") == 4
    assert result.value("spark_task") == {"rows": 350_000, "executors": "4"}
