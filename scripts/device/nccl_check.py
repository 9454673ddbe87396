"""GPU check of the Elastic plugin's NCCL settings, run through ``FlyteElasticHook`` on a CUDA machine.

Usage: ``python scripts/device/nccl_check.py [--out report.json]`` (needs torch with CUDA and one GPU).

Checks, each a real elastic launch through the hook's ``pre`` / ``run`` / ``post``:

* ``one_rank``: NCCL ``all_reduce`` on the GPU; the NCCL variables the hook sets and the
  collective-timeout patch, read in the worker and from the live process group.
* ``two_ranks``: two ranks on one GPU. NCCL refuses two ranks of one communicator on the same
  device unless they look like different hosts, so each rank sets its own ``NCCL_HOSTID``
  (the bytes go through NCCL's socket transport on loopback).
* ``timeout``: rank 1 stops joining collectives; rank 0's collective must time out after
  ``nccl_collective_timeout_sec``, NCCL's watchdog must abort the rank (SIGABRT), and the task
  must fail in bounded time with the per-rank message and the SIGABRT hint.

The GPU machine has torch but not Airflow. When ``airflow.sdk`` cannot be imported, a stand-in
``BaseHook`` (a logger and nothing else, all the hook uses of it) is installed first.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 15


def _airflow_stand_in() -> str:
    try:
        import airflow.sdk  # noqa: F401

        return "real"
    except ImportError:
        pass

    class BaseHook:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.log = logging.getLogger(type(self).__name__)

    airflow = types.ModuleType("airflow")
    sdk = types.ModuleType("airflow.sdk")
    sdk.BaseHook = BaseHook  # type: ignore[attr-defined]
    airflow.sdk = sdk  # type: ignore[attr-defined]
    sys.modules.update({"airflow": airflow, "airflow.sdk": sdk})
    return "stand-in"


def _set_device() -> int:
    import torch

    local_rank = int(os.environ["LOCAL_RANK"])
    torch.cuda.set_device(local_rank % torch.cuda.device_count())
    return local_rank


def _pg_timeout_s() -> Any:
    import torch
    import torch.distributed as dist

    try:
        backend = dist.group.WORLD._get_backend(torch.device("cuda"))  # type: ignore[union-attr]
        return backend.options._timeout.total_seconds()
    except Exception as exc:  # private API: report what happened instead of failing the check
        return f"unreadable: {exc!r}"


def allreduce_on_gpu(distinct_hosts: bool) -> dict[str, Any]:
    """Runs in every rank: NCCL all_reduce of (rank + 1) on the GPU; rank 0's dict is the result."""
    import torch
    import torch.distributed as dist
    from torch.distributed import distributed_c10d as c10d

    if distinct_hosts:
        os.environ["NCCL_HOSTID"] = f"flyte-check-rank-{os.environ['RANK']}"
    _set_device()
    dist.init_process_group("nccl")
    t = torch.full((1024,), float(dist.get_rank() + 1), device="cuda")
    dist.all_reduce(t)
    torch.cuda.synchronize()
    out = {
        "rank": dist.get_rank(),
        "world_size": dist.get_world_size(),
        "backend": dist.get_backend(),
        "value": t[0].item(),
        "device": torch.cuda.get_device_name(),
        "nccl_version": ".".join(map(str, torch.cuda.nccl.version())),
        "env": {k: os.environ.get(k) for k in (
            "TORCH_NCCL_ASYNC_ERROR_HANDLING", "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC", "TORCH_NCCL_ENABLE_MONITORING",
            "NCCL_SOCKET_IFNAME", "FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC", "PYTHONUNBUFFERED", "OMP_NUM_THREADS")},
        "default_pg_nccl_timeout_s": c10d.default_pg_nccl_timeout.total_seconds() if c10d.default_pg_nccl_timeout else None,
        "process_group_timeout_s": _pg_timeout_s(),
    }
    dist.destroy_process_group()
    return out


def hang_in_rank_1(hang_s: int) -> str:
    """Rank 1 joins one collective, then stops joining; rank 0's next collective must time out."""
    import torch
    import torch.distributed as dist

    os.environ["NCCL_HOSTID"] = f"flyte-check-rank-{os.environ['RANK']}"
    _set_device()
    dist.init_process_group("nccl")
    t = torch.ones(16, device="cuda")
    dist.all_reduce(t)
    torch.cuda.synchronize()
    if dist.get_rank() == 1:
        time.sleep(hang_s)
        return "rank 1 slept"
    dist.all_reduce(t)
    torch.cuda.synchronize()
    return "rank 0 was not stopped"


def _launch(fn: Any, args: tuple[Any, ...], **elastic: Any) -> dict[str, Any]:
    from airflow_provider_flyte.core.task_info import TaskInfo
    from airflow_provider_flyte.hooks.pytorch import FlyteElasticHook
    from airflow_provider_flyte.plugins.pytorch import Elastic

    hook = FlyteElasticHook(Elastic(nnodes=1, monitor_interval=1, max_restarts=0, **elastic),
                            task=TaskInfo(dag_id="gpu_check", task_id=fn.__name__))
    started = time.monotonic()
    try:
        with hook.session():
            result: dict[str, Any] = {"ok": True, "result": hook.run(fn, args, {})}
    except Exception as exc:
        result = {"ok": False, "error_type": type(exc).__name__, "error": str(exc)}
    result["seconds"] = round(time.monotonic() - started, 1)
    result["env_left_behind"] = sorted(k for k in ("TORCH_NCCL_ASYNC_ERROR_HANDLING", "NCCL_SOCKET_IFNAME",
                                                   "FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC") if k in os.environ)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    report: dict[str, Any] = {"airflow": _airflow_stand_in()}
    import torch

    report["torch"] = torch.__version__
    report["gpus"] = torch.cuda.device_count()
    nccl = {"nccl_async_error_handling": True, "nccl_collective_timeout_sec": TIMEOUT_S,
            "nccl_heartbeat_timeout_sec": 120}
    report["one_rank"] = _launch(allreduce_on_gpu, (False,), nproc_per_node=1, **nccl)
    report["two_ranks"] = _launch(allreduce_on_gpu, (True,), nproc_per_node=2, **nccl)
    report["timeout"] = _launch(hang_in_rank_1, (300,), nproc_per_node=2, **nccl)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)
    ok = (report["one_rank"]["ok"] and report["two_ranks"]["ok"] and not report["timeout"]["ok"]
          and "SIGABRT" in report["timeout"].get("error", "") and report["timeout"]["seconds"] < 120)
    print("NCCL CHECK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
