"""``FlyteSparkOperator``: run a callable with a ``SparkSession`` from a ``Spark`` config."""

from __future__ import annotations

from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.spark import Spark


class FlyteSparkOperator(FlyteOperator):
    """Run ``python_callable`` with ``ctx().data["spark_session"]`` set.

    ``FlyteSparkOperator(task_id=..., python_callable=fn, plugin_config=Spark(...))``;
    map it over configs with ``.partial(...).expand(plugin_config=[...])``.
    """

    plugin_type = Spark
    ui_color = "#e25a1c"
