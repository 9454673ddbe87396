"""Extra link to the Spark application UI of the task's driver."""

from __future__ import annotations

from airflow_provider_flyte.links.base import FlyteEngineLink


class SparkUILink(FlyteEngineLink):
    """The Spark UI (``sparkContext.uiWebUrl``) of the session the task ran with.

    Recorded when the session exposes one: local and standalone-master runs with
    ``spark.ui.enabled`` (the default). Spark Connect clients have no UI URL, so no link.
    The driver's UI lives as long as the task's session; afterwards use the master's or a
    history server's UI.
    """

    name = "Spark UI"
    link_key = "spark_ui"
