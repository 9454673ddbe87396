"""A Spark task that fails after the session is up: nothing may be left behind."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="spark_failing", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_failing():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}))
    def boom() -> None:
        spark = ctx().data["spark_session"]
        assert spark.range(10).count() == 10
        raise RuntimeError("user code failed on purpose")

    boom()


spark_failing()
