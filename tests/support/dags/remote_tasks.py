"""Task functions that run on a cluster from a staged spec (tests/kubernetes/test_in_cluster_entrypoint.py).

Not a DAG: a DAG-folder module whose functions import the helper package next to it, on the
driver and inside the engine's workers.
"""

from __future__ import annotations

import remote_helpers

from airflow_provider_flyte import ctx


def spark_sum_of_squares(n: int) -> int:
    spark = ctx().data["spark_session"]
    return int(spark.sparkContext.parallelize(range(n), 2).map(remote_helpers.square).sum())


def ray_squares(n: int) -> list[int]:
    import ray

    square = ray.remote(remote_helpers.square)
    return list(ray.get([square.remote(i) for i in range(n)]))


def dask_workers_and_square(x: int) -> dict[str, int]:
    from distributed import Client

    client = Client()  # a bare Client() reaches the task's cluster
    workers = len(client.scheduler_info(n_workers=-1)["workers"])
    return {"workers": workers, "square": client.submit(remote_helpers.square, x).result()}


def elastic_all_reduce() -> dict[str, int]:
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    try:
        value = torch.tensor([float(dist.get_rank() + 1)])
        dist.all_reduce(value)
        return remote_helpers.describe(int(value.item()), dist.get_world_size())
    finally:
        dist.destroy_process_group()


def fails() -> None:
    remote_helpers.square("not a number")  # type: ignore[arg-type]


def dask_secret_digests() -> dict[str, str]:
    """Digests (never values) of the secrets as the task, its file and a Dask worker in another pod see them."""
    import hashlib
    import os
    from pathlib import Path

    from distributed import Client

    def digest(text: str | None) -> str:
        return hashlib.sha256((text or "").encode()).hexdigest()

    client = Client()
    on_workers = client.run(lambda: digest(os.environ.get("API_TOKEN")))
    secret_file = Path(os.environ["FLYTE_SECRETS_DEFAULT_DIR"]) / "db_password"
    return {"env": digest(os.environ.get("API_TOKEN")), "file": digest(secret_file.read_text()),
            "worker": sorted(set(on_workers.values()))[0]}


def removes_its_run_then(outcome: str) -> str:
    """What a pod does when the worker removes its run meanwhile (the task was killed): the worker's
    removal is done here, from the spec URI the pod was started with, then the task fails or returns."""
    import sys

    from airflow_provider_flyte.remote import staging

    staging.cleanup_run(sys.argv[-1])
    if outcome == "fail":
        raise RuntimeError("the task failed after its run was removed")
    return outcome


def sleeps_then_stops_slowly(stop_s: float) -> None:
    """Prints a marker, sleeps until its pod is stopped, then takes ``stop_s`` to unwind (a slow teardown)."""
    import time

    print("remote task sleeping", flush=True)
    try:
        time.sleep(600)
    finally:
        time.sleep(stop_s)
