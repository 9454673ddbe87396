"""Only declared Params reach engine settings: extra trigger-conf keys are invisible to configs."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.params import spark_executors
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="params_guard", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"executors": spark_executors(default=2, maximum=8)})
def params_guard():
    @flyte_task(plugin_config=Spark(spark_conf={
        "spark.executor.instances": "{{ params.executors }}",
        # An undeclared key: a trigger's conf must not be able to set it.
        "spark.driver.extraJavaOptions": "{{ params.get('java_opts', '-Dflyte.safe=1') }}",
        "spark.ui.enabled": "false",
    }))
    def live_conf(**context) -> dict:
        conf = ctx().data["spark_session"].sparkContext.getConf()
        return {
            "instances": conf.get("spark.executor.instances"),
            "java_opts": conf.get("spark.driver.extraJavaOptions"),
            "task_saw_extra_key": "java_opts" in context["params"],
        }

    live_conf()


params_guard()
