"""@flyte_task(Spark()): a plugin config passed positionally (Airflow said 'No positional arguments allowed')."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="bad_task_checks_positional_config", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(Spark())
    def t() -> None:
        pass

    t()


bad()
