"""One DAG per engine for the fault tests on a real ``airflow standalone`` (tests/e2e/test_faults_standalone.py).

- ``fault_blocked_<engine>``: the task starts its engine locally, writes ``<FLYTE_E2E_DIR>/<run>/<engine>.ready``
  and then blocks inside the engine (a Spark job, a Ray task, a Dask future, two Elastic ranks that
  sleep) until it is marked failed through the REST API.
- ``fault_retry_<engine>``: try 1 records its engine's identity and fails; try 2 records its own
  and returns both, so the test can tell whether the retry got a fresh session or cluster.
- ``fault_four_<engine>``: ``.expand()`` over 4 inputs; once its engine answers, each instance
  announces itself and waits (bounded) for its siblings, so the 4 engines are up at once on one
  worker; each returns its engine's identity and how many siblings it met.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment, ctx
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark

ENVS = {
    "spark": TaskEnvironment(name="fault_spark", plugin_config=Spark(
        spark_conf={"spark.master": "local[1]", "spark.ui.enabled": "false"})),
    "ray": TaskEnvironment(name="fault_ray", plugin_config=RayJobConfig(worker_node_config=[])),
    "dask": TaskEnvironment(name="fault_dask", plugin_config=Dask(workers=WorkerGroup(number_of_workers=1))),
    # max_restarts=0: a failing rank fails the try (the default 3 restarts the ranks inside the try)
    "torch": TaskEnvironment(name="fault_torch", plugin_config=Elastic(nnodes=1, nproc_per_node=2, max_restarts=0)),
}


def _folder(run_id: str) -> Path:
    folder = Path(os.environ["FLYTE_E2E_DIR"]) / run_id.replace(":", "_").replace("+", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _announce(path: Path, info: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.rename(path)


def identity(engine: str) -> str:
    """What tells one session or cluster from another."""
    data = ctx().data
    if engine == "spark":
        return str(data["spark_session"].sparkContext.applicationId)
    if engine == "ray":
        import ray

        return str(ray.get_runtime_context().get_node_id())  # random per started node
    if engine == "dask":
        return str(data["dask_client"].scheduler.address)
    return f"{os.environ.get('MASTER_ADDR')}:{os.environ.get('MASTER_PORT')}/{os.environ.get('TORCHELASTIC_RUN_ID')}"


def block(engine: str, run_id: str) -> None:
    """Start work inside the engine that only a kill ends; announce first."""
    folder = _folder(run_id)
    if engine == "spark":
        sc = ctx().data["spark_session"].sparkContext
        _announce(folder / "spark.ready", {"pid": os.getpid()})
        sc.parallelize([1], 1).map(lambda _: time.sleep(600)).collect()
    elif engine == "ray":
        import ray

        ray.get(ray.remote(lambda: 1).remote())  # a worker process exists
        _announce(folder / "ray.ready", {"pid": os.getpid()})
        ray.get(ray.remote(lambda: time.sleep(600)).remote())
    elif engine == "dask":
        from distributed import Client

        client = Client()
        client.submit(lambda: 1).result()
        _announce(folder / "dask.ready", {"pid": os.getpid()})
        client.submit(time.sleep, 600).result()
    else:
        import torch.distributed as dist

        dist.init_process_group("gloo")
        if dist.get_rank() == 0:
            _announce(folder / "torch.ready", {"pid": os.getpid()})
        time.sleep(600)


def _blocked(engine: str) -> Any:
    @dag(dag_id=f"fault_blocked_{engine}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         tags=["test", "fault"])
    def blocked():
        @ENVS[engine].task
        def runs_until_marked_failed(run: str) -> None:
            block(engine, run)

        runs_until_marked_failed("{{ run_id }}")

    return blocked()


def _retried(engine: str) -> Any:
    @dag(dag_id=f"fault_retry_{engine}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         tags=["test", "fault"])
    def retried():
        @ENVS[engine].task(retries=1, retry_delay=timedelta(seconds=1))
        def fails_once(run: str) -> dict[str, str] | None:
            first = _folder(run) / f"{engine}.first"
            me = identity(engine)
            if engine == "torch":
                import torch.distributed as dist

                if not dist.is_initialized():
                    dist.init_process_group("gloo")
                if dist.get_rank() != 0:
                    return None
            if not first.exists():
                first.write_text(me)
                raise RuntimeError(f"try 1 fails on purpose ({engine} {me})")
            return {"first": first.read_text(), "second": me}

        fails_once("{{ run_id }}")

    return retried()


SIBLINGS = 4
SIBLING_WAIT_S = 300


def meet_siblings(engine: str, run_id: str, x: int) -> int:
    """Announce this instance; wait until all :data:`SIBLINGS` have (bounded); return how many did."""
    folder = _folder(run_id) / f"{engine}-four"
    folder.mkdir(exist_ok=True)
    (folder / str(x)).write_text(str(os.getpid()))
    deadline = time.monotonic() + SIBLING_WAIT_S
    while len(list(folder.iterdir())) < SIBLINGS and time.monotonic() < deadline:
        time.sleep(0.2)
    return len(list(folder.iterdir()))


def work(engine: str, x: int) -> int:
    """A small computation on the engine: the sum of squares up to ``x``."""
    data = ctx().data
    if engine == "spark":
        return int(data["spark_session"].sparkContext.parallelize(range(x + 1)).map(lambda v: v * v).sum())
    if engine == "ray":
        import ray

        return int(sum(ray.get([ray.remote(lambda v: v * v).remote(v) for v in range(x + 1)])))
    if engine == "dask":
        return int(sum(data["dask_client"].gather(data["dask_client"].map(lambda v: v * v, range(x + 1)))))
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    value = torch.tensor([float(sum(v * v for v in range(x + 1)))])
    dist.all_reduce(value)  # both ranks hold the same sum: twice it
    return int(value.item()) // dist.get_world_size()


def _four(engine: str) -> Any:
    @dag(dag_id=f"fault_four_{engine}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False,
         tags=["test", "fault"], max_active_tasks=SIBLINGS)
    def four():
        @ENVS[engine].task
        def at_once(x: int, run: str) -> dict[str, Any] | None:
            value = work(engine, x)
            if engine == "torch":
                import torch.distributed as dist

                if dist.get_rank() != 0:
                    return None
            return {"x": x, "value": value, "engine": identity(engine), "pid": os.getpid(),
                    "met": meet_siblings(engine, run, x)}

        at_once.partial(run="{{ run_id }}").expand(x=list(range(1, SIBLINGS + 1)))

    return four()


for _engine in ENVS:
    globals()[f"fault_blocked_{_engine}"] = _blocked(_engine)
    globals()[f"fault_retry_{_engine}"] = _retried(_engine)
    globals()[f"fault_four_{_engine}"] = _four(_engine)
