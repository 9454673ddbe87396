"""Spark locally on the worker, through Airflow's dag.test(), against a real local Spark."""

from __future__ import annotations

import glob
import os
import signal
import tempfile

import psutil
import pytest

from tests.conftest import EXAMPLE_DAGS
from tests.support.procs import alive, descendants, start_dag_process, terminate_group, wait_for


def _java_children() -> list[psutil.Process]:
    return [p for p in alive(descendants(os.getpid())) if "java" in p.name()]


def _spark_tmp_dirs() -> set[str]:
    tmp = tempfile.gettempdir()
    return set(glob.glob(os.path.join(tmp, "flyte-spark-*")) + glob.glob(os.path.join(tmp, "spark-*")))


def test_example_dag_counts_999_with_executor_instances_in_live_conf(dag_runner):
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_spark.py", "example_flyte_spark")
    assert result.state == "success"
    value = result.value("process_data")
    assert value["count"] == 999
    assert value["executor_instances"] == "2"


def test_every_spelling_override_expand_and_mapped_classic_operator(dag_runner):
    result = dag_runner.run("spark_features_dag.py", "spark_features")
    assert set(result.states.values()) == {"success"}, result.states
    assert result.value("count_rows") == 999
    assert result.value("async_conf") == "2"
    bare = result.value("bare_config")
    assert bare == {
        "instances": "5",
        "hadoop": "yes",
        "app": "spark_features.bare_config",
        "master": "local[*]",
    }
    assert result.value("via_task_flyte") == 7
    assert result.value("overridden") == [4, "9"]
    assert result.mapped_states("square") == ["success"] * 3
    assert result.mapped_values("square") == [[1, "2"], [4, "2"], [9, "2"]]
    assert result.mapped_values("classic_mapped") == ["3", "4"]
    assert result.mapped_values("square_kwargs") == [[16, "2"], [25, "2"]]
    assert result.value("env_override") == "7"
    assert result.value("udf_helper") == sorted(f"helper:{n}:True" for n in (0, 1, 2, 10, 20))


def test_failing_task_leaves_no_context_jvm_or_temp_dir(dag_runner):
    from pyspark import SparkContext

    before = _spark_tmp_dirs()
    result = dag_runner.run("spark_failing_dag.py", "spark_failing")
    assert result.state == "failed"
    assert result.states[("boom", -1)] == "failed"
    assert SparkContext._active_spark_context is None
    assert SparkContext._gateway is None
    assert _java_children() == []
    assert _spark_tmp_dirs() - before == set()


def test_the_session_a_task_created_is_stopped_on_a_jvm_it_did_not_start(dag_runner):
    """``post`` stops the task's own SparkContext itself: here no JVM shutdown could do it instead.

    The py4j gateway (a JVM) was launched before the task, as another library in the worker
    might: the task keeps that JVM running, but must leave no SparkContext active in it.
    """
    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    gateway = launch_gateway()
    SparkContext._gateway, SparkContext._jvm = gateway, gateway.jvm
    try:
        result = dag_runner.run("quiet_engines_dag.py", "quiet_spark")
        assert result.state == "success", result.states
        assert result.value("spark_secret")["count"] == 10
        assert SparkContext._gateway is gateway  # not the task's JVM: kept
        assert SparkContext._active_spark_context is None
        assert not gateway.jvm.org.apache.spark.sql.SparkSession.getDefaultSession().isDefined(), \
            "the task's SparkSession is still the JVM's default session"
    finally:
        from airflow_provider_flyte.hooks.spark.jvm import stop_jvm as _stop_jvm

        _stop_jvm()
    assert _java_children() == []


def test_sigterm_to_the_task_process_stops_spark(tmp_path):
    ready = tmp_path / "ready"
    before = _spark_tmp_dirs()
    proc = start_dag_process("spark_slow_dag.py", "spark_slow", env={"FLYTE_TEST_READY_FILE": str(ready)})
    try:
        wait_for(ready.exists, timeout=180, what="the Spark task to start")
        jvms = [p for p in descendants(proc.pid) if "java" in p.name()]
        assert jvms, "the task should have started a JVM"
        proc.send_signal(signal.SIGTERM)
        wait_for(lambda: not alive(jvms) and not (_spark_tmp_dirs() - before), timeout=60,
                 what="the JVM and Spark's temp dirs to go after SIGTERM")
    finally:
        terminate_group(proc, signal.SIGKILL, timeout=30)
    assert _spark_tmp_dirs() - before == set()


@pytest.mark.parametrize("bad", [{"spark.executor.instances": 2}, "spark.executor.instances=2", {3: "x"}])
def test_spark_conf_must_be_a_mapping_of_strings(bad):
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.plugins.spark import Spark

    with pytest.raises(FlyteConfigError, match=r"Spark\.spark_conf.*Fix:"):
        Spark(spark_conf=bad)
