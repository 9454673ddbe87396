"""Warm Dask servers (ReusePolicy): two tasks of one environment, one with another fingerprint, one killed.

Each task reports the scheduler it reached (address, pid), its workers' pids, whether it saw
what the previous task left (an env var on the workers and in the task, a module global),
and the helper module's version on the workers.
"""

from __future__ import annotations

import os
import time
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ReusePolicy, TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

policy = ReusePolicy(replicas=1, idle_ttl=30)
warm_env = TaskEnvironment(name="warm_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)),
                           reusable=policy)
other_env = TaskEnvironment(name="warm_dask_two", plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)),
                            reusable=policy)


def _worker_view() -> dict:
    import sys

    from helpers import warm_mod

    seen = {"env": os.environ.get("WARM_LEAK"), "global": getattr(sys.modules.get("helpers.warm_mod"), "LEAK", None),
            "version": warm_mod.VERSION, "pid": os.getpid()}
    os.environ["WARM_LEAK"] = "set-by-a-task"
    warm_mod.LEAK = "set-by-a-task"
    return seen


def _report(client) -> dict:
    view = client.submit(_worker_view, pure=False).result(timeout=60)
    return {"address": client.scheduler.address, "scheduler_pid": client.run_on_scheduler(os.getpid),
            "workers": len(client.scheduler_info(n_workers=-1)["workers"]), "worker": view,
            "sum": client.submit(sum, [1, 2, 3]).result(timeout=60)}


@dag(dag_id="warm_dask", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "warm"])
def warm_dask():
    @warm_env.task
    def first() -> dict:
        return _report(ctx().data["dask_client"])

    @warm_env.task
    def second() -> dict:
        return _report(ctx().data["dask_client"])

    @other_env.task
    def other() -> dict:
        return _report(ctx().data["dask_client"])

    first() >> second() >> other()


warm_dask()


@dag(dag_id="warm_dask_killed", schedule=None, start_date=datetime(2025, 1, 1), catchup=False, tags=["test", "warm"])
def warm_dask_killed():
    @warm_env.task
    def killed() -> None:
        client = ctx().data["dask_client"]
        marker = os.environ["WARM_KILL_MARKER"]
        with open(marker + ".tmp", "w") as out:
            out.write(str(client.run_on_scheduler(os.getpid)))
        os.replace(marker + ".tmp", marker)
        client.submit(time.sleep, 120, pure=False).result(timeout=180)

    @warm_env.task(trigger_rule="all_done")
    def after() -> dict:
        return _report(ctx().data["dask_client"])

    killed() >> after()


warm_dask_killed()


run_env = TaskEnvironment(name="warm_dask_run", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)),
                          reusable=ReusePolicy(replicas=1, idle_ttl=300, scope="run"))
global_env = TaskEnvironment(name="warm_dask_global", plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)),
                             reusable=ReusePolicy(replicas=1, idle_ttl=300))


@dag(dag_id="warm_dask_run_scope", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["test", "warm"])
def warm_dask_run_scope():
    """Two tasks share a scope="run" server; a scope="global" one of the same run outlives the run."""

    @run_env.task
    def run_first() -> dict:
        return _report(ctx().data["dask_client"])

    @run_env.task
    def run_second() -> dict:
        return _report(ctx().data["dask_client"])

    @global_env.task
    def global_one() -> dict:
        return _report(ctx().data["dask_client"])

    run_first() >> run_second() >> global_one()


warm_dask_run_scope()
