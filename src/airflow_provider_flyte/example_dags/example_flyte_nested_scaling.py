"""flyte-sdk's scaling controller as written in Flyte: a task calls the Spark task with an overridden config.

``await spark_task.override(plugin_config=Spark(...))()`` inside a running task runs the Spark task's
lifecycle inline, in the controller's process, as a Flyte sub-action: the session is built with the
computed executor count, the function runs, the session is stopped, and the controller returns the
value. Its log lines are grouped under "Flyte sub-task ..." in the controller's log. (The Airflow form,
an upstream task whose XCom sizes a separate Spark task, is ``example_flyte_scaling_controller``.)
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

import airflow_provider_flyte as flyte
from airflow_provider_flyte.plugins.spark import Spark

spark_env = flyte.TaskEnvironment(name="spark_env", plugin_config=Spark(spark_conf={"spark.ui.enabled": "false"}))
task_env = flyte.TaskEnvironment(name="task_env")


@spark_env.task
async def spark_task(rows: int = 1000) -> dict:
    spark = flyte.ctx().data["spark_session"]
    return {
        "rows": spark.range(rows).count(),
        "executors": spark.sparkContext.getConf().get("spark.executor.instances"),
    }


@task_env.task
async def scaling_controller(rows: int) -> dict:
    num_executors = max(1, min(8, -(-int(rows) // 100_000)))  # one executor per 100k rows
    new_conf = Spark(spark_conf={
        "spark.executor.instances": str(num_executors),
        "spark.driver.memory": "1000M",
        "spark.ui.enabled": "false",
    })
    return await spark_task.override(plugin_config=new_conf)(rows=int(rows))


@dag(dag_id="example_flyte_nested_scaling", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "spark", "example"], params={"rows": 250_000})
def example_flyte_nested_scaling():
    scaling_controller("{{ params.rows }}")


example_flyte_nested_scaling()
