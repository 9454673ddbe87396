"""Nothing left behind: children a task did not wait for, a SIGKILLed process's bundle cache, torch's error file.

``spawns_a_child`` (no engine) and ``dask_spawns_a_child`` start ``sleep 300`` and return its pid without
waiting for it; the Dask task's scratch folder sweeps what dead processes left; ``elastic_raises`` fails
in its only rank with the run's marker in the message (torch's spawn writes that traceback to a file).
"""

from __future__ import annotations

import subprocess
from datetime import datetime

from airflow.sdk import Param, chain, dag

from airflow_provider_flyte import TaskEnvironment, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic

plain = TaskEnvironment(name="leftovers_plain")
dask_env = TaskEnvironment(name="leftovers_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1)))


def start_sleeper() -> int:
    return subprocess.Popen(["sleep", "300"]).pid


@dag(dag_id="leftovers", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"marker": Param("leftovers-marker", type="string")})
def leftovers():
    @plain.task
    def spawns_a_child() -> int:
        return start_sleeper()

    @dask_env.task(trigger_rule="all_done")
    def dask_spawns_a_child() -> int:
        return start_sleeper()

    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=1, max_restarts=0, monitor_interval=1),
                trigger_rule="all_done")
    def elastic_raises(marker: str) -> None:
        raise ValueError(f"this rank fails on purpose: {marker}")

    chain(spawns_a_child(), dask_spawns_a_child(), elastic_raises("{{ params.marker }}"))


leftovers()
