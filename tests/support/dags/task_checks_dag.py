"""Issue 21 task checks at run time, one ``dag.test()``: each task shows one input applied or refused clearly.

* ``sized``: ``TaskEnvironment.resources`` sizes the local Dask workers (threads, memory limit);
* ``bad_extra``: a connection whose extra is not JSON fails naming the connection's field;
* ``k8s_down``: a Kubernetes API that does not answer fails naming its address and the connection;
* ``warm_dir_file``: ``[flyte] warm_dir`` pointing at a file fails naming the option.

The test (tests/engines/test_task_checks.py) sets the connections and ``AIRFLOW__FLYTE__WARM_DIR``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, ReusePolicy, TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask

sized_env = TaskEnvironment(name="task_checks_sized", plugin_config=Dask(), resources=Resources(cpu="3", memory="512Mi"))
bad_extra_env = TaskEnvironment(name="task_checks_bad_extra", plugin_config=Dask(), conn_id="task_checks_bad_extra")
k8s_env = TaskEnvironment(name="task_checks_k8s", plugin_config=Dask(), conn_id="task_checks_k8s_down",
                          image="python:3.12-slim")
warm_env = TaskEnvironment(name="task_checks_warm", plugin_config=Dask(),
                           reusable=ReusePolicy(replicas=1, idle_ttl=30))


@dag(dag_id="task_checks", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def task_checks():
    @sized_env.task
    def sized() -> dict:
        workers = ctx().data["dask_client"].scheduler_info(n_workers=-1)["workers"].values()
        return {"threads": [w["nthreads"] for w in workers], "memory_limit": [w["memory_limit"] for w in workers]}

    @bad_extra_env.task
    def bad_extra() -> None:
        pass

    @k8s_env.task
    def k8s_down() -> None:
        pass

    @flyte_task(warm_env)
    def warm_dir_file() -> None:
        pass

    sized()
    bad_extra()
    k8s_down()
    warm_dir_file()


task_checks()
