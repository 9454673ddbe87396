"""A PyTorch Elastic task whose workers run until killed (for SIGTERM teardown tests)."""

from __future__ import annotations

import os
import time
from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import flyte_task
from airflow_provider_flyte.plugins.pytorch import Elastic


@dag(dag_id="pytorch_slow", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def pytorch_slow():
    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=0))
    def train_forever() -> None:
        import torch.distributed as dist
        from helpers.pytorch_util import record_attempt

        dist.init_process_group("gloo")
        marker_dir = os.environ.get("FLYTE_TEST_READY_DIR")
        if marker_dir:
            record_attempt(marker_dir)
        time.sleep(600)

    train_forever()


pytorch_slow()
