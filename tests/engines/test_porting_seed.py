"""The seed page's five examples, as printed with only the import lines changed, through dag.test()
against real engines (tests/support/seed_dags/README.md)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from tests.conftest import TEST_DAGS

SOURCE = Path(__file__).resolve().parents[1] / "support" / "seed_dags"
SEED = TEST_DAGS / "seed"


@pytest.fixture(autouse=True)
def _seed_in_dag_folder():
    """dag.test() runs DAGs of the DAG folder; the seed files (which import engines at module level)
    are there only while their own test runs, so other tests' parses do not load them."""
    SEED.mkdir(exist_ok=True)
    for path in SOURCE.glob("seed_*.py"):
        shutil.copy(path, SEED / path.name)
    yield
    shutil.rmtree(SEED, ignore_errors=True)


def test_seed_spark_counts_999(dag_runner):
    result = dag_runner.run(SEED / "seed_spark.py", "seed_spark")
    assert result.state == "success", result.states
    assert result.value("process_data") == 999


def test_seed_ray_squares_with_the_pip_runtime_env(dag_runner):
    # runtime_env={"pip": ["numpy", "pandas"]} is kept as printed: Ray builds its virtualenv on top of
    # this environment (system site packages), where numpy and pandas are installed, so pip resolves
    # them without downloading (docs/porting-from-flyte.md, "Ray's runtime_env pip").
    pytest.importorskip("numpy")
    pytest.importorskip("pandas")
    result = dag_runner.run(SEED / "seed_ray.py", "seed_ray")
    assert result.state == "success", result.states
    assert result.value("ray_task") == [0, 1, 4]


def test_seed_dask_client_reaches_the_three_worker_cluster(dag_runner):
    result = dag_runner.run(SEED / "seed_dask.py", "seed_dask")
    assert result.state == "success", result.states
    assert result.states[("dask_task", -1)] == "success"
    assert ("dask_task", -1) not in result.xcoms  # the seed's task returns None: no XCom
    assert result.value("probe") == {"workers": 3, "sum": 45}


def _log_lines(capfd, caplog) -> list[str]:
    """Every log line of the run: Airflow's task logs go to stdout through structlog."""
    out, err = capfd.readouterr()
    return (out + err).splitlines() + [r.getMessage() for r in caplog.records]


def test_seed_pytorch_two_nodes_fails_clearly_naming_conn_id(dag_runner, capfd, caplog):
    caplog.set_level(logging.INFO)
    result = dag_runner.run(SEED / "seed_pytorch.py", "seed_pytorch")
    assert result.state == "failed"
    assert result.states[("train_model", -1)] == "failed"
    text = "\n".join(_log_lines(capfd, caplog))
    assert "Elastic.nnodes" in text and "conn_id" in text, text[-3000:]


def test_seed_scaling_controller_runs_the_inner_spark_task_inline(dag_runner, capfd, caplog):
    caplog.set_level(logging.INFO)
    result = dag_runner.run(SEED / "seed_scaling_controller.py", "seed_scaling_controller")
    assert result.state == "success", result.states
    assert set(result.states) == {("scaling_controller", -1)}  # no Airflow task for the inner call
    value = result.value("scaling_controller")
    assert value["count"] == 999
    assert value["executor_instances"] == "3"  # str(num_executors), computed by the controller
    assert value["action"] == "seed_scaling_controller.scaling_controller.spark_task"
    messages = [line.split("] ", 1)[-1] if "[info" in line else line for line in _log_lines(capfd, caplog)]
    opened = [i for i, m in enumerate(messages) if "::group::Flyte sub-task seed_scaling_controller" in m]
    assert opened, "the inner run's log group was not opened"
    closed = [i for i, m in enumerate(messages) if "::endgroup::" in m and i > opened[0]]
    assert closed, "the inner run's log group was not closed"
    inside = messages[opened[0]:closed[0] + 1]
    assert any("Running seed_scaling_controller.scaling_controller.spark_task with Spark" in m for m in inside)
    # The inner engine was torn down before the outer task finished: no active SparkContext is left.
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None
