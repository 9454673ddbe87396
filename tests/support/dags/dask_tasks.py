"""Dask through every authoring style: @env.task, @flyte_task, @task.flyte and FlyteDaskOperator.

One task fails on purpose; ``leak_check`` runs last (all_done) and reports which worker
processes of the Dask tasks are still running in this process after their ``post``.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_flyte import Resources, TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

three_env = TaskEnvironment(
    name="dask_three",
    plugin_config=Dask(workers=WorkerGroup(number_of_workers=3, resources=Resources(cpu="1", memory="600Mi"))),
)
one_env = TaskEnvironment(name="dask_one", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))

TIMEOUT_S = 120
DASK_TASKS = ["three_workers", "bag_sum", "via_task_flyte", "classic_operator", "fails"]


def square_via_helper(x: int) -> dict:
    """Defined in the DAG file (pickled by value); imports a helper from the DAG folder on the worker."""
    from helpers import dask_util

    return dask_util.square_here(x)


def _push_worker_pids(client, ti) -> dict:
    pids = client.run(os.getpid)
    ti.xcom_push(key="worker_pids", value=sorted(pids.values()))
    return pids


@dag(dag_id="dask_tasks", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "dask"])
def dask_tasks():
    @three_env.task
    def three_workers(ti=None) -> dict:
        from distributed import Client, wait

        # On a real Airflow worker sys.modules holds the DAG module this function came from; dag.test()
        # re-parses the folder and swaps it. Restore that, so that plain pickle would send
        # square_via_helper by reference (unimportable on workers) unless the hook registered it by value.
        sys.modules[__name__].square_via_helper = square_via_helper
        client = Client()  # as the seed writes it: must reach the task's cluster
        task_client = ctx().data["dask_client"]
        workers = client.scheduler_info(n_workers=-1)["workers"]
        _push_worker_pids(client, ti)
        futures = client.map(square_via_helper, range(4))
        wait(futures, timeout=TIMEOUT_S)  # a worker that cannot unpickle a task dies: fail, do not hang
        results = client.gather(futures)
        return {
            "n_workers": len(workers),
            "same_scheduler": client.scheduler.address == task_client.scheduler.address,
            "own_cluster": client.cluster is not None,
            "nthreads": sorted(w["nthreads"] for w in workers.values()),
            "memory_limits": sorted(w["memory_limit"] for w in workers.values()),
            "values": [r["value"] for r in results],
            "worker_pids": sorted({r["pid"] for r in results}),
            "task_pid": os.getpid(),
            "helper_files": sorted({r["module_file"] for r in results}),
            "sys_path_0": sorted(set(client.run(lambda: sys.path[0]).values())),
        }

    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))
    def bag_sum(ti=None) -> dict:
        import dask.bag as db

        client = ctx().data["dask_client"]
        _push_worker_pids(client, ti)
        total = db.from_sequence(range(10), npartitions=4).map(lambda x: x * 2).sum().compute()
        return {"n_workers": len(client.scheduler_info()["workers"]), "total": total}

    @task.flyte(env=one_env)
    def via_task_flyte(ti=None) -> int:
        from distributed import Client

        client = Client()
        _push_worker_pids(client, ti)
        return client.submit(square_via_helper, 7).result(timeout=TIMEOUT_S)["value"]

    def classic(ti=None) -> int:
        client = ctx().data["dask_client"]
        _push_worker_pids(client, ti)
        return client.submit(sum, [1, 2, 3]).result(timeout=TIMEOUT_S)

    classic_operator = FlyteDaskOperator(task_id="classic_operator", python_callable=classic, env=one_env)

    @one_env.task
    def fails(ti=None) -> None:
        from distributed import Client

        _push_worker_pids(Client(), ti)
        raise RuntimeError("boom from a Dask task")

    @task(trigger_rule="all_done")
    def leak_check(ti=None) -> dict:
        import psutil

        report = {}
        for task_id in DASK_TASKS:
            pids = ti.xcom_pull(task_ids=task_id, key="worker_pids") or []
            still = []
            for pid in pids:
                try:
                    if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                        still.append(pid)
                except psutil.NoSuchProcess:
                    pass
            report[task_id] = {"seen": len(pids), "alive": still}
        return report

    [three_workers(), bag_sum(), via_task_flyte(), classic_operator, fails()] >> leak_check()


dask_tasks()
