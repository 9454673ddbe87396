"""The JVM's errors keep their text and type through the task's teardown (issue 21).

PySpark's ``CapturedException`` and py4j's ``Py4JJavaError`` ask the JVM for their text in
``str()``; the hook stops the JVM before Airflow formats the error, which then read
``<exception str() failed>``. One ``dag.test()`` run, one Spark session per task.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

SPARK_ERRORS = "spark_errors_dag.py"
MISSING_COLUMN = "no_such_column_xyz"  # as in tests/dags/spark_errors_dag.py
UDF_MESSAGE = "the user's UDF refuses this row on purpose"


def _task_logs(output: str) -> dict[str, str]:
    """Each task's part of ``dag.test()``'s console output."""
    starts = list(re.finditer(r"\[DAG TEST\] starting task_id=(\w+)", output))
    ends = [m.start() for m in starts[1:]] + [len(output)]
    return {m.group(1): output[m.start():end] for m, end in zip(starts, ends, strict=True)}


def _failures(path: Path) -> dict[str, dict[str, Any]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return {record["task_id"]: record for record in map(json.loads, lines)}


def test_jvm_errors_keep_their_text_and_type_through_teardown(dag_runner, capfd, tmp_path, monkeypatch) -> None:
    errors_file = tmp_path / "errors.jsonl"
    monkeypatch.setenv("FLYTE_TEST_ERRORS_FILE", str(errors_file))
    java_home = tmp_path / "broken-java"
    (java_home / "bin").mkdir(parents=True)
    (java_home / "bin" / "java").write_text('#!/bin/sh\necho "Error: could not find libjava.so" >&2\nexit 1\n')
    (java_home / "bin" / "java").chmod(0o755)
    monkeypatch.setenv("FLYTE_TEST_BROKEN_JAVA_HOME", str(java_home))
    for name in ("HADOOP_CONF_DIR", "YARN_CONF_DIR"):
        monkeypatch.delenv(name, raising=False)
    result = dag_runner.run(SPARK_ERRORS, "spark_errors")
    out, err = capfd.readouterr()
    logs, failed = _task_logs(out + err), _failures(errors_file)

    assert result.state == "failed"
    assert "str() failed" not in out + err
    expected = {  # task -> (the type Airflow shows, a text it must hold)
        "missing_column": ("pyspark.errors.exceptions.captured.AnalysisException", MISSING_COLUMN),
        "failing_udf": ("pyspark.errors.exceptions.captured.PythonException", f"ValueError: {UDF_MESSAGE}"),
        "bad_shuffle_partitions": ("pyspark.errors.exceptions.captured.IllegalArgumentException",
                                   "'lots' in the config \"spark.sql.shuffle.partitions\" is invalid"),
    }
    for task_id, (kind, text) in expected.items():
        record = failed[task_id]
        assert record["type"] == kind, record
        assert text in record["text"], record
        assert f"{kind}: " in logs[task_id] and text in logs[task_id], logs[task_id][-3000:]
    assert "AnalysisException" in failed["missing_column"]["mro"]  # isinstance still holds
    assert "CapturedException" in failed["failing_udf"]["mro"]

    # A JVM OutOfMemoryError (item: docs/errors.md's translation): translated, the Py4JJavaError quoted and chained.
    oom = failed["driver_out_of_memory"]
    assert oom["type"] == "airflow_provider_flyte.exceptions.FlyteEngineError", oom
    assert "a JVM ran out of memory (java.lang.OutOfMemoryError). Fix: give Spark more memory" in oom["text"], oom
    assert "Py4JJavaError: An error occurred while calling z:java.nio.ByteBuffer.allocate" in oom["text"], oom
    assert oom["cause"]["type"] == "py4j.protocol.Py4JJavaError", oom
    assert "java.lang.OutOfMemoryError: Java heap space" in oom["cause"]["text"], oom
    assert "py4j.protocol.Py4JJavaError: An error occurred while calling" in logs["driver_out_of_memory"]

    # spark-submit that exits before its gateway is up: its own message, not "Java is missing".
    yarn = failed["yarn_without_hadoop_conf"]
    assert yarn["type"] == "airflow_provider_flyte.exceptions.FlyteEngineError", yarn
    assert yarn["text"].startswith("Spark: spark-submit could not start the driver: "), yarn
    assert "When running with master 'yarn' either HADOOP_CONF_DIR or YARN_CONF_DIR must be set" in yarn["text"], yarn
    assert "Java" not in yarn["text"], yarn
    assert "SparkSubmitArguments.validateSubmitArguments" in logs["yarn_without_hadoop_conf"]  # its output, forwarded

    java = failed["broken_java"]
    assert java["text"].startswith("Spark: Spark could not start its JVM: Java is missing or broken"), java
    assert java["text"].endswith("spark-submit said: Error: could not find libjava.so"), java
