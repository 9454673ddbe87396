"""A local Dask worker asked for more threads than this machine can use (16 per CPU): the task fails before
any worker starts, naming WorkerGroup.resources.cpu (it used to start a worker with that many threads)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag
from helpers.pytorch_util import write_failure

from airflow_provider_flyte import Resources, flyte_task
from airflow_provider_flyte.core.bounds import machine_cpus
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

#: One thread more than a local worker of this machine may have (bounds.LOCAL_THREADS_PER_CPU: 16 per CPU).
TOO_MANY_THREADS = machine_cpus() * 16 + 1


@dag(dag_id="config_checks_dask_threads", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"attempt_dir": Param("", type="string")}, default_args={"on_failure_callback": write_failure})
def config_checks_dask_threads():
    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=1,
                                                       resources=Resources(cpu=TOO_MANY_THREADS))))
    def too_many_threads() -> int:
        from distributed import get_client

        return sum(get_client().nthreads().values())

    too_many_threads()


config_checks_dask_threads()
