"""Spark's lifecycle: build the ``SparkSession`` in ``pre``, stop it (and the JVM it started) in ``post``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import Any

from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.plugins.spark import DEFAULT_APP_NAME, Spark
from airflow_provider_flyte.user_code import prepend_path, register_by_value

LOCAL_MASTER = "local[*]"
_JVM_EXIT_TIMEOUT_S = 20


class FlyteSparkHook(FlyteEngineHook[Spark]):
    """Owns one task's ``SparkSession``.

    Locally (no connection) the session runs ``local[*]`` unless ``spark.master`` is set;
    executors' Python workers get the project root on ``PYTHONPATH`` and functions from
    the DAG file are pickled by value, so UDFs can import the user's modules.
    """

    conn_type = "flyte_spark"
    default_conn_name = "flyte_spark_default"
    hook_name = "Flyte Spark"
    config_type = Spark
    engine_name = "Spark"

    def app_name(self) -> str:
        return self.task.display_name if self.task.dag_file or self.task.run_id else DEFAULT_APP_NAME

    def session_conf(self) -> dict[str, str]:
        """The properties the session is built with: plugin config plus local defaults."""
        conf = self.config.effective_conf()
        conf.setdefault("spark.master", LOCAL_MASTER)
        conf.setdefault("spark.pyspark.python", sys.executable)
        conf.setdefault("spark.pyspark.driver.python", sys.executable)
        if self.task.project_root is not None:
            key = "spark.executorEnv.PYTHONPATH"
            conf[key] = prepend_path(conf.get(key), str(self.task.project_root))
        for key, value in (self.env.env_vars or {}).items() if self.env else ():
            conf.setdefault(f"spark.executorEnv.{key}", value)
        return conf

    def pre(self) -> dict[str, Any]:
        from pyspark import SparkContext, cloudpickle
        from pyspark.sql import SparkSession

        conf = self.session_conf()
        started_jvm = SparkContext._gateway is None
        owns_context = SparkContext._active_spark_context is None
        if owns_context and "spark.local.dir" not in conf:
            local_dir = tempfile.mkdtemp(prefix="flyte-spark-")
            self.add_cleanup(shutil.rmtree, local_dir, ignore_errors=True)
            conf["spark.local.dir"] = local_dir
        if started_jvm:
            self.add_cleanup(_stop_jvm)
        # PYSPARK_PYTHON is read when the context starts; keep it for this task only.
        self.set_default_env("PYSPARK_PYTHON", conf["spark.pyspark.python"])
        if conf["spark.master"].startswith("local"):
            self.set_default_env("SPARK_LOCAL_IP", "127.0.0.1")

        builder = SparkSession.builder.appName(self.app_name())
        for key, value in conf.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        if owns_context:
            self.add_cleanup(session.stop)
        else:
            self.log.info("Reusing the SparkContext already running in this process; it is not stopped by this task")
            for key, value in conf.items():
                _set_runtime_conf(session, key, value)
        register_by_value(self.task.python_callable or (lambda: None), cloudpickle)
        return {"spark_session": session}


def _set_runtime_conf(session: Any, key: str, value: str) -> None:
    try:
        session.conf.set(key, value)
    except Exception:  # static confs cannot change on a live context
        pass


def _stop_jvm() -> None:
    """Shut down the py4j gateway and the JVM that ``pyspark`` launched for this task."""
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    try:
        gateway.shutdown()
    except Exception:
        pass
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
    os.environ.pop("PYSPARK_GATEWAY_PORT", None)
    os.environ.pop("PYSPARK_GATEWAY_SECRET", None)
