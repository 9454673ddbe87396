"""A plugin config that reads dag_run.conf: refused at parse time (only declared Params may size engines)."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="bad_conf_in_plugin_config", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.executor.instances": "{{ dag_run.conf['n'] }}"}))
    def t() -> None:
        pass

    t()


bad()
