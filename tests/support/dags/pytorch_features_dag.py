"""PyTorch Elastic through every spelling: @env.task, @flyte_task, @task.flyte and FlyteElasticOperator."""

from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import dag, task

from airflow_provider_flyte import TaskEnvironment, ctx, flyte_task
from airflow_provider_flyte.operators.pytorch import FlyteElasticOperator
from airflow_provider_flyte.plugins.pytorch import Elastic

elastic = Elastic(nnodes=1, nproc_per_node=2, monitor_interval=1, max_restarts=0, nccl_collective_timeout_sec=42)
torch_env = TaskEnvironment(name="torch_env", plugin_config=elastic)

OFFSET = 10


def gather(value):
    """All ranks' ``value``s, in rank order (gloo all_gather_object)."""
    import torch.distributed as dist

    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def scale(n: int) -> dict:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    t = torch.ones(n) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    return {"rank": dist.get_rank(), "values": t.tolist(), "pids": gather(os.getpid())}


@dag(dag_id="pytorch_features", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def pytorch_features():
    @torch_env.task
    def allreduce(x: int = 1) -> dict:
        import torch
        import torch.distributed as dist
        import torch.distributed.distributed_c10d as c10d
        from helpers import pytorch_util

        dist.init_process_group("gloo")
        rank = dist.get_rank()
        t = torch.tensor([float(rank + x + OFFSET)])
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        info = pytorch_util.rank_info()
        result = {
            "rank": rank,
            "sum": t.item(),
            "world_size": info["world_size"],
            "helper": info["helper"],
            "omp": gather(os.environ.get("OMP_NUM_THREADS")),
            "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
            "heartbeat": os.environ.get("TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC"),
            "monitoring": os.environ.get("TORCH_NCCL_ENABLE_MONITORING"),
            "collective_timeout_s": c10d.default_pg_nccl_timeout.total_seconds(),
            "socket_ifnames": [os.environ.get("GLOO_SOCKET_IFNAME"), os.environ.get("NCCL_SOCKET_IFNAME")],
            "task_id": ctx().task_id,
            "pids": gather(os.getpid()),
        }
        dist.destroy_process_group()
        return result

    @flyte_task(plugin_config=Elastic(nnodes="1:1", nproc_per_node=2, monitor_interval=1, max_restarts=0))
    def via_flyte_task() -> str:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        return f"rank{dist.get_rank()}-of-{dist.get_world_size()}"

    @task.flyte(env=torch_env)
    async def via_task_flyte(word: str) -> str:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        words = gather(f"{word}{dist.get_rank()}")
        return "+".join(words)

    classic = FlyteElasticOperator(
        task_id="classic", python_callable=scale, op_kwargs={"n": 3}, plugin_config=elastic,
    )

    allreduce(x=1) >> via_flyte_task() >> via_task_flyte("w") >> classic


pytorch_features()
