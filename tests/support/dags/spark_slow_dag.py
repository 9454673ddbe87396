"""A Spark task that runs until it is killed (for SIGTERM teardown tests)."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="spark_slow", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def spark_slow():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}))
    def wait_forever() -> None:
        spark = ctx().data["spark_session"]
        spark.range(10).count()
        marker = os.environ.get("FLYTE_TEST_READY_FILE")
        if marker:
            Path(marker).write_text("ready")
        time.sleep(600)

    wait_forever()


spark_slow()
