"""PyTorch Elastic failures: a rank that raises (one restart), all ranks dying at once, a SIGKILLed rank, nnodes=2 locally."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag
from helpers.pytorch_util import write_failure

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.pytorch import Elastic


@dag(dag_id="pytorch_failing", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     params={"attempt_dir": Param("", type="string")},
     default_args={"on_failure_callback": write_failure})
def pytorch_failing():
    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=1))
    def rank_raises(attempt_dir: str) -> None:
        import torch.distributed as dist
        from helpers.pytorch_util import record_attempt

        dist.init_process_group("gloo")
        record_attempt(attempt_dir, task="rank_raises")
        if dist.get_rank() == 1:
            raise ValueError("rank 1 refuses to train")
        dist.barrier()

    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=0))
    def all_ranks_exit(attempt_dir: str) -> None:
        from helpers.pytorch_util import record_attempt, wait_for_attempts

        record_attempt(attempt_dir, task="all_ranks_exit")
        # Every rank is up before any dies, so all of them die "at once" (else the agent
        # would stop the slow rank itself, and the test could not see that both ran).
        wait_for_attempts(attempt_dir, "all_ranks_exit", int(os.environ["WORLD_SIZE"]))
        os._exit(7)

    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=0))
    def rank_killed() -> None:
        import signal
        import time

        if os.environ["RANK"] == "1":
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does
        time.sleep(120)

    @flyte_task(plugin_config=Elastic(nnodes=2, nproc_per_node=1))
    def two_nodes_locally() -> None:
        raise AssertionError("must not run")

    rank_raises("{{ params.attempt_dir }}")
    all_ranks_exit("{{ params.attempt_dir }}")
    rank_killed()
    two_nodes_locally()


pytorch_failing()
