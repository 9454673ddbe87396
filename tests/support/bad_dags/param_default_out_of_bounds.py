"""A cluster-size Param whose default is above its own maximum: the trigger form would open invalid."""

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte.params import dask_workers


@dag(dag_id="bad_param_default", schedule=None, start_date=datetime(2025, 1, 1),
     params={"workers": dask_workers(default=64, maximum=32)})
def bad():
    pass


bad()
