"""Spark tasks that fail with the JVM's own errors (issue 21): each error's text and type must reach Airflow.

One Spark session per task; each error comes from the JVM while the session is up, and Airflow
formats it after ``post`` stopped the JVM. ``record_failure`` writes what Airflow's failure callback
got (type, ``str()``, the chain) to ``$FLYTE_TEST_ERRORS_FILE``: the exception the task failed with.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.plugins.spark import Spark

QUIET = Spark(spark_conf={"spark.ui.enabled": "false"})
MISSING_COLUMN = "no_such_column_xyz"
UDF_MESSAGE = "the user's UDF refuses this row on purpose"
#: A Java installation whose ``bin/java`` prints one line and fails (the test makes it).
BROKEN_JAVA = TaskEnvironment(name="broken_java", plugin_config=QUIET,
                              env_vars={"JAVA_HOME": os.environ.get("FLYTE_TEST_BROKEN_JAVA_HOME", "/nonexistent")})


def describe(exc: BaseException | None) -> dict[str, Any] | None:
    if exc is None:
        return None
    kind = type(exc)
    try:
        text = str(exc)
    except Exception as failed:  # what Airflow's log would show as "<exception str() failed>"
        text = f"<str() failed: {failed!r}>"
    return {"type": f"{kind.__module__}.{kind.__qualname__}", "mro": [k.__name__ for k in kind.__mro__],
            "text": text, "cause": describe(exc.__cause__)}


def record_failure(context: Any) -> None:
    path = os.environ.get("FLYTE_TEST_ERRORS_FILE")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"task_id": context["ti"].task_id, **describe(context["exception"])}) + "\n")


def select_missing_column() -> None:
    """An ``AnalysisException`` (module level: the in-cluster test stages it too)."""
    ctx().data["spark_session"].range(3).select(MISSING_COLUMN).collect()


@dag(dag_id="spark_errors", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     default_args={"on_failure_callback": record_failure})
def spark_errors():
    @flyte_task(plugin_config=QUIET)
    def missing_column() -> None:
        select_missing_column()

    @flyte_task(plugin_config=QUIET)
    def failing_udf() -> None:
        from pyspark.sql.functions import udf

        @udf("long")
        def refuse(value: int) -> int:
            raise ValueError(UDF_MESSAGE)

        ctx().data["spark_session"].range(1).select(refuse("id")).collect()

    @flyte_task(plugin_config=QUIET)
    def bad_shuffle_partitions() -> None:
        ctx().data["spark_session"].conf.set("spark.sql.shuffle.partitions", "lots")

    @flyte_task(plugin_config=QUIET)
    def driver_out_of_memory() -> None:
        """A ``Py4JJavaError`` holding a JVM ``OutOfMemoryError`` (the default 1g driver heap)."""
        jvm = ctx().data["spark_session"].sparkContext._jvm
        jvm.java.nio.ByteBuffer.allocate(2_000_000_000)

    @flyte_task(plugin_config=Spark(spark_conf={"spark.master": "yarn", "spark.ui.enabled": "false"}))
    def yarn_without_hadoop_conf() -> None:
        """spark-submit refuses ``yarn`` without ``HADOOP_CONF_DIR`` and exits before its gateway is up."""

    @BROKEN_JAVA.task
    def broken_java() -> None:
        """Java itself fails: the one case that reads "Java is missing or broken"."""

    missing_column()
    failing_udf()
    bad_shuffle_partitions()
    driver_out_of_memory()
    yarn_without_hadoop_conf()
    broken_java()


spark_errors()
