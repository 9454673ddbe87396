"""The flyte-sdk PyTorch Elastic example, ported to Airflow: a small DDP training run on CPU with gloo.

``Elastic(nnodes=1, nproc_per_node=2)`` runs the task's function in two worker processes on the
Airflow worker; the task returns rank 0's value. torch is imported inside the function, so parsing
this DAG file does not load it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.pytorch import Elastic

torch_env = TaskEnvironment(
    name="torch_env",
    plugin_config=Elastic(
        nnodes=1,  # one node: the Airflow worker
        nproc_per_node=2,  # processes per node (usually 1 per GPU)
        max_restarts=3,
        monitor_interval=1,
    ),
    image="pytorch-image",
)


@dag(dag_id="example_flyte_pytorch", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
     tags=["flyte", "pytorch", "example"])
def example_flyte_pytorch():
    @torch_env.task
    def train_model(epochs: int = 20) -> dict:
        import torch
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel as DDP

        dist.init_process_group("gloo")
        rank, world_size = dist.get_rank(), dist.get_world_size()

        # Each rank fits y = 3x + 1 on its own shard; DDP all-reduces the gradients.
        torch.manual_seed(rank)
        x = torch.randn(64, 1)
        y = 3 * x + 1
        model = DDP(torch.nn.Linear(1, 1))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        losses = []
        for _ in range(epochs):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())

        weight = model.module.weight.detach().clone()
        dist.all_reduce(weight)  # identical on every rank after DDP: the mean equals each copy
        dist.destroy_process_group()
        return {
            "rank": rank,
            "world_size": world_size,
            "first_loss": losses[0],
            "final_loss": losses[-1],
            "weight": round((weight / world_size).item(), 3),
        }

    train_model()


example_flyte_pytorch()
