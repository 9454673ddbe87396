"""Spark embedded on the worker: a ``local[*]`` session in the task process."""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.hooks.spark import FlyteSparkHook
from airflow_provider_flyte.runtime.spec import LOCAL


class LocalSparkHook(FlyteSparkHook):
    """``local[*]`` (or the config's ``spark.master``) in this process; executors' Python workers
    get the project root on ``PYTHONPATH``."""

    placement = LOCAL

    def start(self) -> dict[str, Any]:
        from pyspark import cloudpickle
        from pyspark.sql import SparkSession

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
