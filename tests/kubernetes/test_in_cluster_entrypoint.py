"""The in-cluster entrypoint, started exactly as an engine operator's pod would start it.

Each test stages a real task (a function from a DAG-folder module that imports a helper package)
into a store, then runs ``python -m airflow_provider_flyte.runtime <spec-uri>`` (Spark:
``spark-submit`` of the entrypoint file) as a subprocess whose working directory and
``PYTHONPATH`` do not hold the DAG folder, next to the engine's own processes: a ``ray start``
cluster with ``RAY_ADDRESS``; ``dask scheduler`` + ``dask worker`` with ``DASK_SCHEDULER_ADDRESS``;
two Elastic nodes with the training operator's variables. The result read back from the store
must equal the same function's local run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

import airflow_provider_flyte.runtime.__main__ as entry_module
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.remote.staging import RemoteTaskError, read_result, stage_task
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS
from tests.support.dask_clusters import start_cluster as start_dask_cluster
from tests.support.procs import free_port
from tests.support.ray_clusters import start_cluster as start_ray_cluster

POD_TIMEOUT_S = 240
ENTRYPOINT = [sys.executable, "-m", "airflow_provider_flyte.runtime"]
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The DAG-folder module, imported as Airflow's worker would (the DAG folder on sys.path)."""
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    import remote_tasks

    return remote_tasks


@pytest.fixture
def store(tmp_path: Path) -> str:
    (tmp_path / "store").mkdir()
    return f"file://{tmp_path / 'store'}"


def spec_for(config: Any, task_id: str) -> TaskSpec:
    return build_spec(TaskInfo(dag_id="remote", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                      config.validated(), None, None)


def pod_env(**extra: str) -> dict[str, str]:
    """A pod's environment: the image's (this venv), no DAG folder, no PYTHONPATH, no Airflow DAG settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW__CORE__DAGS_FOLDER", "RAY_", "DASK_", "PET_", "PYTHONPATH"))}
    env.update(PYSPARK_PYTHON=sys.executable, SPARK_LOCAL_IP="127.0.0.1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def run_pod(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cwd.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=POD_TIMEOUT_S,
                          stdin=subprocess.DEVNULL)
    return proc


def assert_pod_ok(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"


def local_run(config: Any, task_id: str, fn: Any, *args: Any) -> Any:
    return TaskRunner(spec_for(config, task_id), config.validated(), fn).run(args, {})


def test_spark_submit_of_the_entrypoint(remote_tasks: Any, store: str, tmp_path: Path) -> None:
    config = Spark(spark_conf={"spark.executor.instances": "1"})
    staged = stage_task(spec_for(config, "spark"), remote_tasks.spark_sum_of_squares, [10], {}, base=store)
    proc = run_pod([SPARK_SUBMIT, "--master", "local[2]", "--conf", f"spark.pyspark.python={sys.executable}",
                    entry_module.__file__, staged.spec_uri], pod_env(), tmp_path / "pod")
    assert_pod_ok(proc)
    assert "placement in_cluster" in proc.stdout, proc.stdout[-3000:]
    remote = read_result(staged)
    assert remote == 285
    assert remote == local_run(config, "spark-local", remote_tasks.spark_sum_of_squares, 10)


def test_ray_entrypoint_on_a_ray_start_cluster(remote_tasks: Any, store: str, tmp_path: Path) -> None:
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    staged = stage_task(spec_for(config, "ray"), remote_tasks.ray_squares, [3], {}, base=store)
    cluster = start_ray_cluster()
    try:
        env = {**pod_env(), **cluster.env(), "RAY_ADDRESS": cluster.gcs_address}
        proc = run_pod([*ENTRYPOINT, staged.spec_uri], env, tmp_path / "pod")
        jobs_seen = cluster.nodes()
    finally:
        leftover = cluster.stop()
    assert not leftover, leftover
    assert_pod_ok(proc)
    assert len(jobs_seen) == 2
    remote = read_result(staged)
    assert remote == [0, 1, 4]
    assert remote == local_run(config, "ray-local", remote_tasks.ray_squares, 3)


def test_dask_entrypoint_with_the_scheduler_address(remote_tasks: Any, store: str, tmp_path: Path) -> None:
    config = Dask(workers=WorkerGroup(number_of_workers=2))
    staged = stage_task(spec_for(config, "dask"), remote_tasks.dask_workers_and_square, [3], {}, base=store)
    cluster = start_dask_cluster()
    try:
        proc = run_pod([*ENTRYPOINT, staged.spec_uri], {**pod_env(), **cluster.env(),
                                                        "DASK_SCHEDULER_ADDRESS": cluster.address}, tmp_path / "pod")
        workers_after = cluster.n_workers()
    finally:
        leftover = cluster.stop()
    assert not leftover, leftover
    assert_pod_ok(proc)
    assert workers_after == 2, "the task must leave the cluster's workers running"
    remote = read_result(staged)
    assert remote == {"workers": 2, "square": 9}
    assert remote == local_run(config, "dask-local", remote_tasks.dask_workers_and_square, 3)


def test_elastic_two_nodes_rendezvous_and_rank_zero_answers(remote_tasks: Any, store: str, tmp_path: Path) -> None:
    config = Elastic(nnodes=2, nproc_per_node=1)
    staged = stage_task(spec_for(config, "elastic"), remote_tasks.elastic_all_reduce, [], {}, base=store)
    rdzv_port, master_port = free_port(), free_port()
    pods = []
    for rank, ip in enumerate(("127.0.0.2", "127.0.0.3")):
        env = pod_env(  # what the training operator sets for an elastic PyTorchJob, plus the pod IP
            PET_NNODES="2:2", PET_NPROC_PER_NODE="1", PET_RDZV_BACKEND="c10d",
            PET_RDZV_ENDPOINT=f"127.0.0.2:{rdzv_port}", MASTER_ADDR="127.0.0.2", MASTER_PORT=str(master_port),
            WORLD_SIZE="2", RANK=str(rank), POD_IP=ip,
        )
        cwd = tmp_path / f"pod{rank}"
        cwd.mkdir()
        pods.append(subprocess.Popen([*ENTRYPOINT, staged.spec_uri], env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL))
    outputs = []
    try:
        for pod in pods:
            out, _ = pod.communicate(timeout=POD_TIMEOUT_S)
            outputs.append((pod.returncode, out))
    finally:
        for pod in pods:
            if pod.poll() is None:
                pod.kill()
    for code, out in outputs:
        assert code == 0, out[-4000:]
    assert sum("does not hold global rank 0" in out for _, out in outputs) == 1, [o[-2000:] for _, o in outputs]
    remote = read_result(staged)
    assert remote == {"total": 3, "world_size": 2}
    assert remote == local_run(Elastic(nnodes=1, nproc_per_node=2), "elastic-local", remote_tasks.elastic_all_reduce)


def test_a_failing_task_writes_its_remote_traceback(remote_tasks: Any, store: str, tmp_path: Path) -> None:
    config = Dask(workers=WorkerGroup(number_of_workers=1))
    staged = stage_task(spec_for(config, "fails"), remote_tasks.fails, [], {}, base=store)
    cluster = start_dask_cluster()
    try:
        proc = run_pod([*ENTRYPOINT, staged.spec_uri], {**pod_env(), **cluster.env(),
                                                        "DASK_SCHEDULER_ADDRESS": cluster.address}, tmp_path / "pod")
    finally:
        cluster.stop()
    assert proc.returncode == 1, proc.stdout[-3000:]
    with pytest.raises(RemoteTaskError) as info:
        read_result(staged)
    message = str(info.value)
    assert "TypeError" in message and "remote_helpers" in message and "in square" in message, message


def test_the_entrypoint_leaves_no_process_or_folder(tmp_path: Path) -> None:
    leftovers = [p for p in psutil.process_iter(["cmdline"])
                 if "airflow_provider_flyte.runtime" in " ".join(p.info["cmdline"] or [])]
    assert not leftovers
    assert not [p for p in Path("/tmp").glob("flyte-pod-*")]


@pytest.mark.parametrize("outcome, code", [("fail", 1), ("return", 3)])
def test_a_run_removed_while_it_ran_is_not_put_back(remote_tasks: Any, store: str, tmp_path: Path, outcome: str,
                                                    code: int) -> None:
    """A pod stopped by its job's deletion writes nothing once the worker removed the run (no ``error.json``
    recreating ``runs/<key>/``); the task itself needs no engine, so the plain entrypoint runs it."""
    staged = stage_task(build_spec(TaskInfo(dag_id="remote", task_id=f"removed-{outcome}", run_id="manual__1",
                                            project_root=TEST_DAGS), None, None, None),
                        remote_tasks.removes_its_run_then, [outcome], {}, base=store)
    proc = run_pod([*ENTRYPOINT, staged.spec_uri], pod_env(), tmp_path / "pod")
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert "was removed while the task ran" in proc.stdout, proc.stdout[-3000:]
    runs = Path(store.removeprefix("file://")) / "runs"
    assert not [p for p in runs.rglob("*") if p.is_file()], "the pod put its removed run back"
