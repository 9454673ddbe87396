"""The JVM's errors keep their text and type through the task's teardown (issue 21).

PySpark's ``CapturedException`` and py4j's ``Py4JJavaError`` ask the JVM for their text in
``str()``; the hook stops the JVM before Airflow formats the error, which then read
``<exception str() failed>``. One ``dag.test()`` run, one Spark session per task; and the same
error from the in-cluster entrypoint (``spark-submit`` of it, as a SparkApplication's driver).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DAGS
from tests.support.dagrun import child_dagrun, finish_child_run, start_child_run

SPARK_ERRORS = "spark_errors_dag.py"
MISSING_COLUMN = "no_such_column_xyz"  # as in tests/support/dags/spark_errors_dag.py
UDF_MESSAGE = "the user's UDF refuses this row on purpose"
#: Six tasks, four Spark sessions, on a loaded 2-CPU machine (about 2 minutes when idle).
RUN_BOUND_S = 600


def _task_logs(output: str) -> dict[str, str]:
    """Each task's part of ``dag.test()``'s console output."""
    starts = list(re.finditer(r"\[DAG TEST\] starting task_id=(\w+)", output))
    ends = [m.start() for m in starts[1:]] + [len(output)]
    return {m.group(1): output[m.start():end] for m, end in zip(starts, ends, strict=True)}


def _failures(path: Path) -> dict[str, dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return {record["task_id"]: record for record in map(json.loads, lines)}


def test_jvm_errors_keep_their_text_and_type_through_teardown(tmp_path, monkeypatch) -> None:
    errors_file = tmp_path / "errors.jsonl"
    monkeypatch.setenv("FLYTE_TEST_ERRORS_FILE", str(errors_file))
    java_home = tmp_path / "broken-java"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text('#!/bin/sh\necho "Error: could not find libjava.so" >&2\nexit 1\n')
    (java_home / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("FLYTE_TEST_BROKEN_JAVA_HOME", str(java_home))
    for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        monkeypatch.delenv(name, raising=False)
    # In a child process: its console output is the task log (in this process, Airflow's logging may still
    # write to a stream an earlier test captured).
    output, ended = finish_child_run(start_child_run(SPARK_ERRORS, "spark_errors"), timeout=RUN_BOUND_S)
    assert ended, f"dag.test() did not end within {RUN_BOUND_S} s: {output[-3000:]}"
    run = child_dagrun(output)
    logs, failed = _task_logs(output), _failures(errors_file)

    problems: list[str] = []

    def expect(ok: bool, what: str, detail: Any) -> None:
        if not ok:
            problems.append(f"{what}: {str(detail)[-3000:]}")

    expect(run["state"] == "failed", "the run fails", run)
    expect("str() failed" not in output, "no error text is lost", "'str() failed' in the output")
    expected = {  # task -> (the type Airflow shows, a text it must hold)
        "missing_column": ("pyspark.errors.exceptions.captured.AnalysisException", MISSING_COLUMN),
        "failing_udf": ("pyspark.errors.exceptions.captured.PythonException", f"ValueError: {UDF_MESSAGE}"),
        "bad_shuffle_partitions": ("pyspark.errors.exceptions.captured.IllegalArgumentException",
                                   "'lots' in the config \"spark.sql.shuffle.partitions\" is invalid"),
    }
    for task_id, (kind, text) in expected.items():
        record = failed.get(task_id, {})
        expect(record.get("type") == kind and text in record.get("text", ""), f"{task_id}: the error", record)
        expect(f"{kind}: " in logs.get(task_id, "") and text in logs.get(task_id, ""), f"{task_id}: the task log",
               logs.get(task_id))
    expect("AnalysisException" in failed.get("missing_column", {}).get("mro", []), "isinstance holds",
           failed.get("missing_column"))

    # A JVM OutOfMemoryError (docs/errors.md's translation): translated, the Py4JJavaError quoted and chained.
    oom = failed.get("driver_out_of_memory", {})
    cause = oom.get("cause") or {}
    expect(oom.get("type") == "airflow_provider_flyte.exceptions.FlyteEngineError"
           and "a JVM ran out of memory (java.lang.OutOfMemoryError). Fix: give Spark more memory" in oom["text"]
           and "Py4JJavaError: An error occurred while calling z:java.nio.ByteBuffer.allocate" in oom["text"],
           "driver_out_of_memory: translated", oom)
    expect(cause.get("type") == "py4j.protocol.Py4JJavaError"
           and "java.lang.OutOfMemoryError: Java heap space" in cause.get("text", ""),
           "driver_out_of_memory: the Py4JJavaError chained", oom)
    expect("py4j.protocol.Py4JJavaError: An error occurred while calling" in logs.get("driver_out_of_memory", ""),
           "driver_out_of_memory: the task log", logs.get("driver_out_of_memory"))

    # spark-submit exits before its gateway is up: its own message, not "Java is missing".
    yarn = failed.get("yarn_without_hadoop_conf", {})
    expect(yarn.get("type") == "airflow_provider_flyte.exceptions.FlyteEngineError"
           and yarn["text"].startswith("Spark: spark-submit could not start the driver: ")
           and "When running with master 'yarn' either HADOOP_CONF_DIR or YARN_CONF_DIR must be set" in yarn["text"]
           and "Java" not in yarn["text"], "yarn_without_hadoop_conf: spark-submit's message", yarn)
    expect("SparkSubmitArguments.validateSubmitArguments" in logs.get("yarn_without_hadoop_conf", ""),
           "yarn_without_hadoop_conf: spark-submit's output in the task log", logs.get("yarn_without_hadoop_conf"))
    java = failed.get("broken_java", {})
    expect(java.get("text", "").startswith("Spark: Spark could not start its JVM: Java is missing or broken")
           and java["text"].endswith("spark-submit said: Error: could not find libjava.so"), "broken_java", java)
    assert not problems, "\n\n".join(problems)


def test_the_in_cluster_driver_writes_the_jvm_error_text(tmp_path, monkeypatch) -> None:
    """The pod's entrypoint under ``spark-submit`` writes the error Airflow's worker raises: its text survives too."""
    import airflow_provider_flyte.runtime.__main__ as entry_module
    from airflow_provider_flyte.plugins.spark import Spark
    from airflow_provider_flyte.remote.staging import RemoteTaskError, read_result, stage_task
    from tests.kubernetes.test_in_cluster_entrypoint import SPARK_SUBMIT, pod_env, run_pod, spec_for

    monkeypatch.syspath_prepend(str(TEST_DAGS))
    import spark_errors_dag

    (tmp_path / "store").mkdir()
    config = Spark(spark_conf={"spark.ui.enabled": "false"})
    staged = stage_task(spec_for(config, "missing_column"), spark_errors_dag.select_missing_column, [], {},
                        base=f"file://{tmp_path / 'store'}")
    proc = run_pod([SPARK_SUBMIT, "--master", "local[1]", "--conf", "spark.ui.enabled=false",
                    entry_module.__file__, staged.spec_uri],
                   pod_env(PYTHONPATH=str(Path(entry_module.__file__).parents[2])),  # this provider, as the image's
                   tmp_path / "pod")
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "str() failed" not in proc.stdout + proc.stderr
    with pytest.raises(RemoteTaskError) as info:
        read_result(staged)
    assert info.value.remote_type == "pyspark.errors.exceptions.captured.AnalysisException", info.value
    assert MISSING_COLUMN in info.value.remote_message, info.value
