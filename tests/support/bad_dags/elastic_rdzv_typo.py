"""An Elastic rdzv_configs key torch's rendezvous does not read (join_timout): a DAG import error."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.pytorch import Elastic


@dag(dag_id="bad_elastic_rdzv", schedule=None, start_date=datetime(2025, 1, 1))
def bad():
    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=1, rdzv_configs={"join_timout": 60}))
    def t() -> None:
        pass

    t()


bad()
