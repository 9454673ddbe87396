"""A Hadoop property in spark_conf (no spark. prefix, so Spark would ignore it): a DAG import error."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="bad_spark_hadoop_key", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Spark(spark_conf={"fs.s3a.endpoint": "http://127.0.0.1:9000"}))
    def t() -> None:
        pass

    t()


bad()
