"""``FlyteSparkOperator``: run a callable with a ``SparkSession`` from a ``Spark`` config."""

from __future__ import annotations

from airflow_provider_flyte.links.kubernetes import kubernetes_links
from airflow_provider_flyte.links.spark import SparkUILink
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.spark import Spark


class FlyteSparkOperator(FlyteOperator):
    """Run ``python_callable`` with ``ctx().data["spark_session"]`` set.

    ``FlyteSparkOperator(task_id=..., python_callable=fn, plugin_config=Spark(...))``;
    map it over configs with ``.partial(...).expand(plugin_config=[...])``.
    ``conn_id`` (or ``env.conn_id``) runs it on a standalone master or a Spark Connect server
    (see :class:`~airflow_provider_flyte.hooks.spark.FlyteSparkHook`).
    """

    plugin_type = Spark
    ui_color = "#e25a1c"
    operator_extra_links = (SparkUILink(), *kubernetes_links())
