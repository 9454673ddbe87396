"""An importable worker entrypoint for the PyTorch part of bench_lifecycle.py."""

import torch
import torch.distributed as dist


def all_reduce() -> int:
    dist.init_process_group("gloo")
    t = torch.ones(1) * (dist.get_rank() + 1)
    dist.all_reduce(t)
    dist.destroy_process_group()
    return int(t.item())
