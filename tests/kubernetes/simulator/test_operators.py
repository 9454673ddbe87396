"""Each simulated operator runs a real job to its final phase, through the real client and hook.

The objects come from the repository's manifest builders where they can run here; what the pods
run is only what the object says (a tiny real program), on the venv standing for the image.
"""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import psutil
import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.manifests import dask as dask_manifest
from airflow_provider_flyte.manifests import pytorch as pytorch_manifest
from airflow_provider_flyte.manifests import ray as ray_manifest
from airflow_provider_flyte.manifests import spark as spark_manifest
from airflow_provider_flyte.manifests.base import JobTarget
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark
from tests.support.k8s.fixtures import K8s


def _task(task_id: str) -> TaskInfo:
    return TaskInfo(dag_id="sim", task_id=task_id, run_id="manual__2026-12-01T00:00:00+00:00")


def _hook(k8s: K8s):  # noqa: ANN202
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

    return KubernetesHook(conn_id=k8s.conn_id)


def _run(k8s: K8s, module, manifest: dict, timeout: float) -> tuple[dict, list[str]]:  # noqa: ANN001
    """Create through KubernetesHook, wait until ``module.job_state`` says done; the object and its phases.

    The phases come from a watch started before the create, so every version the server stored is
    seen, however briefly a phase lasted (polling missed short ones on a loaded machine).
    """
    from kubernetes import watch

    hook = _hook(k8s)
    group, version = manifest["apiVersion"].split("/")
    name = manifest["metadata"]["name"]
    listed = k8s.custom.list_namespaced_custom_object(group, version, "default", module.PLURAL)
    hook.create_custom_object(group, version, module.PLURAL, manifest)
    phases: list[str] = []
    deadline = time.monotonic() + timeout
    stream = watch.Watch()
    for event in stream.stream(k8s.custom.list_namespaced_custom_object, group, version, "default", module.PLURAL,
                               resource_version=listed["metadata"]["resourceVersion"],
                               timeout_seconds=max(1, int(timeout))):
        obj = event["object"]
        if obj["metadata"]["name"] != name or event["type"] == "DELETED":
            continue
        state = module.job_state(obj)
        if not phases or phases[-1] != state.phase:
            phases.append(state.phase)
        if state.done or time.monotonic() > deadline:
            stream.stop()
    assert phases and module.job_state(hook.get_custom_object(group, version, module.PLURAL, name)).done, \
        f"{manifest['kind']} not done within {timeout} s: {phases}"
    return hook.get_custom_object(group, version, module.PLURAL, name), phases


def _delete(k8s: K8s, module, obj: dict) -> float:  # noqa: ANN001
    """Delete the object, wait until every process of the simulated cluster is gone; the seconds it took."""
    group, version = obj["apiVersion"].split("/")
    start = time.monotonic()
    _hook(k8s).delete_custom_object(group, version, module.PLURAL, obj["metadata"]["name"])
    k8s.sim.wait_for(lambda: not k8s.sim.live_processes(), 10, what="processes stopped")
    return time.monotonic() - start


def _log(k8s: K8s, pod: str, container: str | None = None) -> str:
    kw = {"container": container} if container else {}
    return k8s.core.read_namespaced_pod_log(pod, "default", _preload_content=False, **kw).data.decode()


# ------------------------------------------------------------------------------------------ Dask

RUNNER = ("import os; from distributed import Client; c = Client(timeout=60); "
          "print('scheduler', os.environ['DASK_SCHEDULER_ADDRESS']); "
          "print('sum', c.submit(sum, [1, 2, 3]).result()); c.close(); raise SystemExit(int(os.environ['CODE']))")


def _daskjob(name: str, code: int) -> dict:
    """A minimal DaskJob in dask-kubernetes' own shape (`dask scheduler` / `dask worker`)."""
    return {
        "apiVersion": "kubernetes.dask.org/v1", "kind": "DaskJob", "metadata": {"name": name},
        "spec": {
            "job": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "job", "image": "img:1", "args": ["python", "-c", RUNNER],
                 "env": [{"name": "CODE", "value": str(code)}]}]}},
            "cluster": {"spec": {
                "scheduler": {
                    "spec": {"containers": [{"name": "scheduler", "image": "img:1",
                                             "args": ["dask", "scheduler", "--dashboard-address", ":0"],
                                             "ports": [{"name": "tcp-comm", "containerPort": 8786}]}]},
                    "service": {"type": "ClusterIP",
                                "selector": {"dask.org/cluster-name": name, "dask.org/component": "scheduler"},
                                "ports": [{"name": "tcp-comm", "port": 8786, "targetPort": "tcp-comm"}]}},
                "worker": {"replicas": 2, "spec": {"containers": [{
                    "name": "worker", "image": "img:1",
                    "args": ["dask", "worker", "--name", "$(DASK_WORKER_NAME)", "--nthreads", "1",
                             "--dashboard-address", ":0"]}]}}}}}}


@pytest.mark.parametrize(("code", "final"), [(0, "Successful"), (1, "Failed")])
def test_daskjob(k8s: K8s, code: int, final: str) -> None:
    name = f"dask-{code}"
    obj, phases = _run(k8s, dask_manifest, _daskjob(name, code), 90)
    assert obj["status"]["jobStatus"] == final and phases[-1] == final
    assert obj["status"]["jobRunnerPodName"] == f"{name}-runner"
    log = _log(k8s, f"{name}-runner")
    assert f"scheduler tcp://{name}-scheduler.default.svc.cluster.local:8786" in log and "sum 6" in log
    # the operator deletes the DaskCluster when the runner ends: scheduler and workers stop, the runner stays
    k8s.sim.wait_for(lambda: [p.metadata.name for p in k8s.core.list_namespaced_pod("default").items]
                     == [f"{name}-runner"], 15)
    assert _delete(k8s, dask_manifest, obj) < 10


def test_daskjob_from_the_manifest_builder(k8s: K8s) -> None:
    target = JobTarget.for_task(_task("dask"), image="img:1", command=["python", "-c", RUNNER], env={"CODE": "0"})
    manifest = dask_manifest.build_manifest(Dask(workers=WorkerGroup(number_of_workers=2)), target)
    name = manifest["metadata"]["name"]
    obj, phases = _run(k8s, dask_manifest, manifest, 90)
    assert phases[-1] == "Successful", (phases, _log(k8s, f"{name}-runner"))
    assert "sum 6" in _log(k8s, f"{name}-runner", "job")
    assert _delete(k8s, dask_manifest, obj) < 10


def test_daskjob_delete_while_running_stops_everything(k8s: K8s) -> None:
    job = _daskjob("dask-stop", 0)
    job["spec"]["job"]["spec"]["containers"][0]["args"] = ["python", "-c", "import time; time.sleep(300)"]
    _hook(k8s).create_custom_object("kubernetes.dask.org", "v1", "daskjobs", job)
    k8s.sim.wait_for(lambda: len(k8s.sim.pids()) >= 4 and (_hook(k8s).get_custom_object(
        "kubernetes.dask.org", "v1", "daskjobs", "dask-stop").get("status") or {}).get("jobStatus") == "Running", 60)
    pids = k8s.sim.pids()
    took = _delete(k8s, dask_manifest, job)
    assert took < 10 and not [p for p in pids if psutil.pid_exists(p)
                              and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
    # DaskCluster, Deployments, WorkerGroup, Service, pods: collected. Pods are deleted gracefully,
    # so the kubelet removes their objects a moment after their processes exit, as on a real cluster.
    k8s.sim.wait_for(lambda: k8s.leftovers() == [], 15, what="no object left")


# --------------------------------------------------------------------------------------- PyTorch

TRAIN = textwrap.dedent("""
    import os, torch, torch.distributed as dist
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    t = torch.tensor([rank + 1.0])
    dist.all_reduce(t)
    print("rank", rank, "world", dist.get_world_size(), "sum", t.item(), flush=True)
    dist.destroy_process_group()
    raise SystemExit(int(os.environ.get("CODE", "0")) if rank == 0 else 0)
""")


@pytest.mark.parametrize(("code", "final"), [(0, "Succeeded"), (3, "Failed")])
def test_pytorchjob_from_the_manifest_builder(k8s: K8s, tmp_path: Path, code: int, final: str) -> None:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    target = JobTarget.for_task(_task(f"train{code}"), image="img:1", env={"CODE": str(code)},
                                command=["python", "-m", "torch.distributed.run", str(script)])
    manifest = pytorch_manifest.build_manifest(Elastic(nnodes=2, nproc_per_node=1, max_restarts=0), target)
    name = manifest["metadata"]["name"]
    obj, phases = _run(k8s, pytorch_manifest, manifest, 120)
    assert phases[-1] == final, (phases, obj["status"], [_log(k8s, f"{name}-worker-{i}")[-1500:] for i in (0, 1)])
    conditions = {c["type"]: c["status"] for c in obj["status"]["conditions"]}
    assert conditions["Created"] == "True" and conditions[final] == "True"
    log = _log(k8s, f"{name}-worker-0", "pytorch")
    assert "world 2 sum 3.0" in log
    pod = k8s.core.read_namespaced_pod(f"{name}-worker-1", "default")
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["PET_RDZV_ENDPOINT"] == f"{name}-worker-0:23456" and env["PET_NNODES"] == "2:2"
    assert "MASTER_ADDR" not in env  # Worker-only: no MASTER_ADDR/RANK/WORLD_SIZE
    assert _delete(k8s, pytorch_manifest, obj) < 10


# ----------------------------------------------------------------------------------------- Spark

def test_sparkapplication_from_the_manifest_builder(k8s: K8s, tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text("import sys\nfrom pyspark.sql import SparkSession\nspark = SparkSession.builder.getOrCreate()\n"
                   "print('SUM', spark.sparkContext.parallelize(range(10)).sum(), sys.argv[1:], flush=True)\n"
                   "spark.stop()\n")
    target = JobTarget.for_task(_task("spark"), image="img:1", command=[], args=["a1"], main_file=f"local://{app}")
    manifest = spark_manifest.build_manifest(Spark(spark_conf={"spark.ui.enabled": "false"}), target,
                                             spark_version="4.0.0")
    obj, phases = _run(k8s, spark_manifest, manifest, 120)
    assert phases[-1] == "COMPLETED" and "RUNNING" in phases
    driver = obj["status"]["driverInfo"]["podName"]
    assert driver == f"{manifest['metadata']['name']}-driver"
    assert "SUM 45 ['a1']" in _log(k8s, driver, "spark-kubernetes-driver")
    labels = k8s.core.read_namespaced_pod(driver, "default").metadata.labels
    assert labels["spark-role"] == "driver" and labels["sparkoperator.k8s.io/launched-by-spark-operator"] == "true"
    assert _delete(k8s, spark_manifest, obj) < 10


# ------------------------------------------------------------------------------------------- Ray

def test_rayjob_from_the_manifest_builder(k8s: K8s, tmp_path: Path) -> None:
    temp = Path("/tmp") / f"rs{tmp_path.name[-6:]}"  # Ray's unix socket paths stay short
    code = "import os, ray; ray.init(); print('ANSWER', ray.get(ray.remote(lambda: 42).remote()), os.environ['FOO'])"
    target = JobTarget.for_task(_task("ray"), image="img:1", command=["python", "-c", code], env={"FOO": "bar"})
    config = RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(
        ray_start_params={"num-cpus": "1", "temp-dir": str(temp)}))
    manifest = ray_manifest.build_manifest(config, target)
    try:
        obj, phases = _run(k8s, ray_manifest, manifest, 150)
        assert phases[-1] == "Complete/SUCCEEDED" and obj["status"]["jobDeploymentStatus"] == "Complete"
        assert "Initializing" in phases
        submitters = k8s.core.list_namespaced_pod(
            "default", label_selector=f"ray.io/originated-from-cr-name={manifest['metadata']['name']}").items
        assert "ANSWER 42 bar" in _log(k8s, submitters[0].metadata.name)  # runtime_env reached the job
        assert _delete(k8s, ray_manifest, obj) < 10  # finalizer removed by the operator, cluster collected
    finally:
        import shutil

        shutil.rmtree(temp, ignore_errors=True)


# ------------------------------------------------------------------------------- frozen operator

def test_frozen_operator_never_moves_the_status(k8s: K8s) -> None:
    k8s.sim.freeze("DaskJob")
    _hook(k8s).create_custom_object("kubernetes.dask.org", "v1", "daskjobs", _daskjob("frozen", 0))
    time.sleep(2)
    obj = _hook(k8s).get_custom_object("kubernetes.dask.org", "v1", "daskjobs", "frozen")
    assert "status" not in obj and k8s.core.list_namespaced_pod("default").items == []
    assert dask_manifest.job_state(obj).done is False
    _hook(k8s).delete_custom_object("kubernetes.dask.org", "v1", "daskjobs", "frozen")
