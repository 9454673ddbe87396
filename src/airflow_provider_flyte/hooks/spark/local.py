"""Spark embedded on the worker: a ``local[*]`` session in the task process."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.runtime.spec import LOCAL


class LocalSparkHook(FlyteSparkHook):
    """``local[*]`` (or the config's ``spark.master``) in this process; executors' Python workers
    get the project root on ``PYTHONPATH``."""

    placement = LOCAL

    def start(self) -> dict[str, Any]:
        from pyspark import cloudpickle
        from pyspark.sql import SparkSession

        require_java()
        conf = self.session_conf()
        # PYSPARK_PYTHON is read when the context starts; keep it for this task only.
        self.set_default_env("PYSPARK_PYTHON", conf["spark.pyspark.python"])
        if conf["spark.master"].startswith("local"):
            self.set_default_env("SPARK_LOCAL_IP", "127.0.0.1")
        session = self._owned_session(
            SparkSession.builder.appName(self.app_name()), conf,
            reused="Reusing the SparkContext already running in this process; it is not stopped by this task",
        )
        self.pickle_by_value(cloudpickle)
        self._record_ui(session)
        return {"spark_session": session}


def require_java(environ: Mapping[str, str] | None = None) -> None:
    """Fail before the JVM start when there is no Java at all (pyspark's own error is ``JAVA_GATEWAY_EXITED``)."""
    environ = os.environ if environ is None else environ
    home = environ.get("JAVA_HOME")
    if home:
        if os.access(os.path.join(home, "bin", "java"), os.X_OK):
            return
        found = f"JAVA_HOME={home} has no bin/java"
    elif shutil.which("java", path=environ.get("PATH")):
        return
    else:
        found = "JAVA_HOME is not set and no java is on PATH"
    raise FlyteEngineError(
        f"Spark: Spark needs Java, and none was found on this machine ({found}). Fix: install Java 17 or "
        "newer (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME to a Java installation"
    )
