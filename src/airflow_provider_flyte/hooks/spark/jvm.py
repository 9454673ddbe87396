"""The driver JVM a Spark task starts: launched with its output in the task log, bounded while a
standalone master registers it, stopped with the task; and the text of its errors, read while it is up."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from airflow_provider_flyte.core.error_text import NO_JAVA
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hygiene.engine_output import is_continuation, stated_level

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

_JVM_EXIT_TIMEOUT_S = 20
#: How many of spark-submit's last output lines a failed start keeps, and how long it waits for them.
_SUBMIT_LINES_KEPT = 200
_SUBMIT_OUTPUT_WAIT_S = 5
_SUBMIT_MESSAGE_LINES = 5
_MAX_SUBMIT_MESSAGE = 1000
#: spark-submit's output when Java itself is missing, unrunnable or too old.
_JAVA_BROKEN = re.compile(
    r"JAVA_HOME is not set|java: (?:command )?not found|bin/java: (?:No such file|Permission denied|cannot execute)"
    r"|UnsupportedClassVersionError|compiled by a more recent version of the Java Runtime"
)
#: spark-class's line when ``java`` could not even run Spark's launcher (it printed no command to run).
_LAUNCHER_FAILED = re.compile(r"spark-class: line \d+: CMD: bad array subscript")


def jvm_error_types() -> tuple[type[BaseException], ...]:
    """PySpark's and py4j's exception types whose ``str()`` needs the JVM (none before pyspark is imported)."""
    if "pyspark" not in sys.modules:
        return ()
    from py4j.protocol import Py4JJavaError
    from pyspark.errors.exceptions.captured import CapturedException

    return CapturedException, Py4JJavaError


def jvm_error_text(error: BaseException) -> str:
    """``str(error)`` while the JVM is up; what Python holds of it already if the JVM cannot answer."""
    try:
        return str(error)
    except Exception as exc:
        held = getattr(error, "_desc", None) or getattr(error, "errmsg", None) or type(error).__name__
        return f"{held} (the JVM could not give the full message: {type(exc).__name__})"


def launch_driver_jvm(conf: dict[str, str]) -> None:
    """Start the driver JVM (as ``getOrCreate`` would) with its output on a pipe into the task log.

    Left on the task's stderr, every line the JVM or its Python workers print (``WARN
    NativeCodeLoader``, "Setting default log level") would be an ERROR line of the task log. The
    pipe is read from before ``spark-submit`` starts, so when it exits before the gateway is up (it
    refused a property, ``yarn`` without ``HADOOP_CONF_DIR``) its own words are in the log and the error.
    """
    from subprocess import STDOUT

    from pyspark import SparkConf, SparkContext
    from pyspark.errors import PySparkRuntimeError
    from pyspark.java_gateway import launch_gateway

    from airflow_provider_flyte.hygiene.engine_output import forward

    spark_conf = SparkConf()
    for key, value in conf.items():
        spark_conf.set(key, value)
    read_end, write_end = os.pipe()
    output = forward(os.fdopen(read_end, "rb"), logging.getLogger("spark"), name="spark driver output",
                     keep=_SUBMIT_LINES_KEPT)
    try:
        try:
            gateway = launch_gateway(spark_conf, popen_kwargs={"stdout": write_end, "stderr": STDOUT})
        finally:
            os.close(write_end)  # spark-submit holds its own copy: the pipe ends when it exits
    except PySparkRuntimeError as exc:
        condition = getattr(exc, "getCondition", exc.getErrorClass)()  # getErrorClass before pyspark 4
        if condition != "JAVA_GATEWAY_EXITED":
            raise
        raise submit_failed(output.lines(timeout=_SUBMIT_OUTPUT_WAIT_S)) from exc
    SparkContext._gateway = gateway
    SparkContext._jvm = gateway.jvm


def submit_failed(lines: list[str]) -> FlyteEngineError:
    """The error for a ``spark-submit`` that exited before its gateway was up, from what it printed."""
    said = _submit_message(lines)
    output = "\n".join(lines)
    if not said or _JAVA_BROKEN.search(output) or _LAUNCHER_FAILED.search(output):
        printed = f"spark-submit said: {said}" if said else "spark-submit printed nothing"
        return FlyteEngineError(f"Spark: {NO_JAVA}. {printed}")
    return FlyteEngineError(
        f"Spark: spark-submit could not start the driver: {said}. Fix: change what it names (a property in "
        "Spark.spark_conf or the connection's spark.* extras, or the environment it asks for); its whole "
        "output is in the task log above"
    )


def _submit_message(lines: list[str]) -> str:
    """spark-submit's own message: its lines that state no level below ERROR, without stack frames."""
    said = [line.strip() for line in lines if not is_continuation(line) and not _LAUNCHER_FAILED.search(line)
            and (stated_level(line) or logging.ERROR) >= logging.ERROR]
    text = " ".join(said[:_SUBMIT_MESSAGE_LINES]).rstrip(".")
    return text if len(text) <= _MAX_SUBMIT_MESSAGE else text[: _MAX_SUBMIT_MESSAGE - 3] + "..."


@contextlib.contextmanager
def master_must_answer(target: ClusterTarget, timeout: float) -> Iterator[None]:
    """Around the context's start on a standalone master: kill the driver JVM if it is still waiting after
    ``timeout`` + ``ANSWER_MARGIN_S``, and fail naming the master.

    A master that accepts connections and never answers would hold the task for Spark's own registration
    retries (3 x 20 s, fixed in ``StandaloneAppClient``) and then fail with "Cannot call methods on a
    stopped SparkContext", which names no address.
    """
    from pyspark import SparkContext

    from airflow_provider_flyte.hooks.clusters import ANSWER_MARGIN_S, no_answer_error

    bound = timeout + ANSWER_MARGIN_S
    lock, fired, done = threading.Lock(), threading.Event(), threading.Event()

    def stop_the_driver() -> None:
        with lock:
            if done.is_set():
                return
            fired.set()
            proc = getattr(SparkContext._gateway, "proc", None)
            if proc is not None:
                proc.kill()

    timer = threading.Timer(bound, stop_the_driver)
    timer.daemon = True
    timer.start()
    try:
        yield
    except Exception as exc:
        if fired.is_set():
            raise no_answer_error(target, "Spark master", bound, "it did not register this application") from exc
        raise
    finally:
        with lock:
            done.set()
        timer.cancel()
    if fired.is_set():  # the driver was stopped just as the registration finished
        raise no_answer_error(target, "Spark master", bound, "it did not register this application")


def stop_jvm() -> None:
    """Shut down the py4j gateway and the JVM that ``pyspark`` launched for this task."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):
        gateway.shutdown()
    if proc is not None:
        # The JVM's PythonGatewayServer exits when its stdin closes; kill it if it lingers.
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=_JVM_EXIT_TIMEOUT_S)
        except Exception:
            proc.kill()
            proc.wait(timeout=_JVM_EXIT_TIMEOUT_S)
    SparkContext._gateway = None
    SparkContext._jvm = None
    # A stop that failed half-way (the JVM was busy when a timeout hit) leaves these behind;
    # they point at the JVM that is gone now.
    from pyspark.sql import SparkSession

    SparkContext._active_spark_context = None
    SparkSession._instantiatedSession = None
    SparkSession._activeSession = None
    os.environ.pop("PYSPARK_GATEWAY_PORT", None)
    os.environ.pop("PYSPARK_GATEWAY_SECRET", None)
