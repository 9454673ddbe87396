"""Spark inside the application ``spark-submit`` started (the driver of a SparkApplication).

The spark-operator runs ``spark-submit`` with the SparkApplication's ``sparkConf``; the task's
session is the one that set up (``getOrCreate``), the code bundle reaches executors through
``addPyFile``, and runtime SQL settings of the plugin config apply to the session.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.core.spec import IN_CLUSTER
from airflow_provider_flyte.hooks.spark import FlyteSparkHook


class InClusterSparkHook(FlyteSparkHook):
    """The driver that ``spark-submit`` started: its master and properties came from the submit."""

    placement = IN_CLUSTER

    def start(self) -> dict[str, Any]:
        from pyspark import cloudpickle
        from pyspark.sql import SparkSession

        conf = {k: v for k, v in self.config.effective_conf().items() if k != "spark.master"}
        self._add_executor_env(conf)
        session = self._owned_session(
            SparkSession.builder.appName(self.app_name()), conf,
            reused="Using the SparkContext spark-submit started",
        )
        self.log.info("Spark session of this application on %s (application %s)",
                      session.sparkContext.master, session.sparkContext.applicationId)
        self._add_bundle_to_context(session)
        self.pickle_by_value(cloudpickle)
        self._record_ui(session)
        return {"spark_session": session}
