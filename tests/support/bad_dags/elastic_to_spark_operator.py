"""An Elastic config handed to the Spark operator: must be a DAG import error naming the field."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte.operators.spark import FlyteSparkOperator
from airflow_provider_flyte.plugins.pytorch import Elastic


@dag(dag_id="bad_elastic_to_spark", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    FlyteSparkOperator(task_id="t", python_callable=lambda: 1, plugin_config=Elastic(nnodes=1, nproc_per_node=1))


bad()
