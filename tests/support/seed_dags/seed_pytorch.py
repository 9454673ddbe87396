# ruff: noqa  (the seed page's code as printed: only its import lines are changed)
from airflow_provider_flyte.plugins.pytorch import Elastic, RunPolicy
import torch
import airflow_provider_flyte as flyte

torch_env = flyte.TaskEnvironment(
    name="torch_env",
    plugin_config=Elastic(
        nnodes=2, # Number of nodes
        nproc_per_node=1, # Processes per node (usually 1 per GPU)
        max_restarts=3,
    ),
    image="pytorch-image",
)

@torch_env.task
def train_model(epochs: int):
    torch.distributed.init_process_group("gloo")
    # ... training logic ...


# -- not on the seed page: the DAG that runs it --------------------------------------------------
from datetime import datetime  # noqa: E402

from airflow.sdk import DAG  # noqa: E402

with DAG("seed_pytorch", schedule=None, start_date=datetime(2025, 1, 1), catchup=False):
    train_model(epochs=1)
