"""The Kubernetes placement through the runner, against the API server + operator simulator (tests/support/k8s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS


@pytest.fixture
def remote_tasks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(TEST_DAGS))
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    import remote_tasks

    return remote_tasks


def run_on_k8s(k8s: Any, config: Any, fn: Any, *args: Any, task_id: str, **options: Any) -> Any:
    from airflow_provider_flyte import TaskEnvironment

    env = TaskEnvironment(name="k8s", image="sim/venv:1")
    spec = build_spec(TaskInfo(dag_id="k8s", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                      config.validated(), env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5, **options})
    return TaskRunner(spec, config.validated(), fn).run(args, {})


def test_dask_job_waited_on_in_the_worker(k8s: Any, remote_tasks: Any) -> None:
    result = run_on_k8s(k8s, Dask(workers=WorkerGroup(number_of_workers=2)), remote_tasks.dask_workers_and_square, 3,
                        task_id="dask")
    assert result == {"workers": 2, "square": 9}
    assert k8s.server.count(verb="create", resource="daskjobs") == 1


def test_spark_application(k8s: Any, remote_tasks: Any) -> None:
    from airflow_provider_flyte.plugins.spark import Spark

    result = run_on_k8s(k8s, Spark(spark_conf={"spark.executor.instances": "1"}), remote_tasks.spark_sum_of_squares,
                        10, task_id="spark")
    assert result == 285
    assert k8s.server.count(verb="create", resource="sparkapplications") == 1


def test_ray_job(k8s: Any, remote_tasks: Any) -> None:
    from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig

    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    assert run_on_k8s(k8s, config, remote_tasks.ray_squares, 3, task_id="ray") == [0, 1, 4]


def test_pytorch_job_two_nodes_return_rank_zeros_value(k8s: Any, remote_tasks: Any) -> None:
    from airflow_provider_flyte.plugins.pytorch import Elastic

    result = run_on_k8s(k8s, Elastic(nnodes=2, nproc_per_node=1), remote_tasks.elastic_all_reduce, task_id="torch")
    assert result == {"total": 3, "world_size": 2}
    # deleted with the job (Foreground): a real API server's garbage collector does it after the job's
    # DELETE returned, so within a few seconds rather than at once
    k8s.sim.wait_for(lambda: all(p.metadata.deletion_timestamp for p in k8s.core.list_namespaced_pod("default").items),
                     timeout=30, what="the job's pods deleted by the garbage collector")


def test_a_failing_function_shows_its_remote_traceback_and_the_job_is_deleted(k8s: Any, remote_tasks: Any) -> None:
    from airflow_provider_flyte.remote.jobs import KubernetesJobError

    with pytest.raises(KubernetesJobError) as info:
        run_on_k8s(k8s, Dask(workers=WorkerGroup(number_of_workers=1)), remote_tasks.fails, task_id="fails")
    message = str(info.value)
    assert "DaskJob default/" in message and "Failed" in message
    assert "TypeError" in message and "in square" in message and "remote_helpers" in message, message


def test_image_pull_backoff_fails_fast_with_the_reason(k8s: Any, remote_tasks: Any) -> None:
    import time

    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.remote.jobs import KubernetesJobError

    config = Dask(workers=WorkerGroup(number_of_workers=1))
    env = TaskEnvironment(name="k8s", image="sim/venv:pull-fails")
    spec = build_spec(TaskInfo(dag_id="k8s", task_id="pull", run_id="manual__1", project_root=TEST_DAGS),
                      config.validated(), env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5})
    started = time.monotonic()
    with pytest.raises(KubernetesJobError) as info:
        TaskRunner(spec, config.validated(), remote_tasks.dask_workers_and_square).run((3,), {})
    assert time.monotonic() - started < 60
    assert "ImagePullBackOff" in str(info.value) or "ErrImagePull" in str(info.value), str(info.value)


def test_409_on_create_reattaches_to_the_existing_object(k8s: Any) -> None:
    """A second create of the same name (a retried create, another worker) answers 409 and reattaches."""
    from airflow_provider_flyte.remote.jobs import KubernetesJobs

    jobs = KubernetesJobs(k8s.conn_id, "airflow_provider_flyte.manifests.dask")
    k8s.sim.freeze("DaskJob")  # nothing runs: only the object matters here
    body = {"apiVersion": "kubernetes.dask.org/v1", "kind": "DaskJob",
            "metadata": {"name": "twice", "namespace": "default", "labels": {"a": "b"}},
            "spec": {"job": {"spec": {"containers": [{"name": "job", "image": "x"}]}},
                     "cluster": {"spec": {"scheduler": {"spec": {"containers": [{"name": "s", "image": "x"}]},
                                                        "service": {}},
                                          "worker": {"replicas": 0,
                                                     "spec": {"containers": [{"name": "w", "image": "x"}]}}}}}}
    first, created = jobs.create(body)
    second, created_again = jobs.create(body)
    assert (created, created_again) == (True, False)
    assert second["metadata"]["uid"] == first["metadata"]["uid"]
    assert [r.status for r in k8s.server.request_log(verb="create", resource="daskjobs")] == [201, 409]
    assert jobs.delete("twice") and not jobs.delete("twice")  # a second delete tolerates 404


def test_429_429_201_makes_one_object(k8s: Any, remote_tasks: Any) -> None:
    k8s.server.inject_fault(status=429, verb="create", resource="daskjobs", times=2, retry_after=1)
    result = run_on_k8s(k8s, Dask(workers=WorkerGroup(number_of_workers=1)), remote_tasks.dask_workers_and_square, 4,
                        task_id="throttled")
    assert result == {"workers": 1, "square": 16}
    creates = k8s.server.request_log(verb="create", resource="daskjobs")
    assert [r.status for r in creates] == [429, 429, 201]


def test_kept_failed_objects_are_swept_after_expiry(k8s: Any, remote_tasks: Any) -> None:
    import time

    from airflow_provider_flyte.remote.jobs import KubernetesJobError, KubernetesJobs

    with pytest.raises(KubernetesJobError):
        run_on_k8s(k8s, Dask(workers=WorkerGroup(number_of_workers=1)), remote_tasks.fails, task_id="keep",
                   keep_failed_s=2)
    jobs = KubernetesJobs(k8s.conn_id, "airflow_provider_flyte.manifests.dask")
    kept = jobs.find("app.kubernetes.io/managed-by=airflow-provider-flyte")
    assert len(kept) == 1, "the failed job is kept for debugging"
    time.sleep(3)
    run_on_k8s(k8s, Dask(workers=WorkerGroup(number_of_workers=1)), remote_tasks.dask_workers_and_square, 1,
               task_id="after")
    assert jobs.find("app.kubernetes.io/managed-by=airflow-provider-flyte") == []


def _sleeper(k8s: Any, remote_tasks: Any, task_id: str, *, deferrable: bool) -> TaskRunner:
    """A runner for a Dask job whose task sleeps until its pod is stopped, then unwinds slowly."""
    from airflow_provider_flyte import TaskEnvironment

    config = Dask(workers=WorkerGroup(number_of_workers=1)).validated()
    spec = build_spec(TaskInfo(dag_id="k8s", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                      config, TaskEnvironment(name="k8s", image="sim/venv:1"), k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": deferrable, "startup_timeout": 120, "poll_interval": 0.5})
    return TaskRunner(spec, config, remote_tasks.sleeps_then_stops_slowly)


def _wait_until_it_sleeps(k8s: Any, pod: str) -> None:
    import time

    from airflow_provider_flyte.remote.jobs import KubernetesJobs

    jobs = KubernetesJobs(k8s.conn_id, "airflow_provider_flyte.manifests.dask")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if "remote task sleeping" in jobs.log_tail(pod, None):
            return
        time.sleep(0.5)
    raise AssertionError(f"the task never slept in {pod}: {k8s.problems()}")


def _staged_runs(tmp_path: Path) -> list[Path]:
    runs = tmp_path / "store" / "runs"
    return [p for p in runs.rglob("*") if p.is_file()] if runs.exists() else []


def _dask_jobs(k8s: Any) -> list[Any]:
    return [obj for res, obj in k8s.server.store.all_objects() if res.plural == "daskjobs"]


def test_a_killed_deferred_task_removes_its_run_after_its_pods_stopped(k8s: Any, remote_tasks: Any,
                                                                       tmp_path: Path) -> None:
    """The trigger's ``on_kill`` returns once the deleted job's pods stopped, its run removed: a pod that
    unwinds slowly (3 s here) cannot put ``error.json`` back after the removal."""
    import asyncio
    import time

    from airflow.sdk.exceptions import TaskDeferred

    with pytest.raises(TaskDeferred) as deferred:
        _sleeper(k8s, remote_tasks, "killed-deferred", deferrable=True).run((3.0,), {})
    trigger = deferred.value.trigger
    _wait_until_it_sleeps(k8s, trigger.ref.log_pod)
    assert _staged_runs(tmp_path), "nothing was staged"
    started = time.monotonic()
    asyncio.run(trigger.on_kill())
    took = time.monotonic() - started
    assert not k8s.sim.live_processes(), f"on_kill returned after {took:.1f} s with the job's pods still running"
    assert not _dask_jobs(k8s), "the DaskJob was not deleted"
    assert not _staged_runs(tmp_path), _staged_runs(tmp_path)
    assert took < 25, f"on_kill took {took:.1f} s (the triggerer gives it 30)"


def test_killing_a_task_that_waits_in_the_worker_deletes_its_job_and_its_run(k8s: Any, remote_tasks: Any,
                                                                            tmp_path: Path) -> None:
    """``on_kill`` in the worker (Airflow SIGKILLs 5 s after SIGTERM): the job and its staged run go at once."""
    import threading
    import time

    runner = _sleeper(k8s, remote_tasks, "killed-in-worker", deferrable=False)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            runner.run((0.5,), {})
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=run, daemon=True)
    waiter.start()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _dask_jobs(k8s):
        time.sleep(0.2)
    (job,) = _dask_jobs(k8s)
    _wait_until_it_sleeps(k8s, f"{job['metadata']['name']}-runner")  # the Dask hook's log pod
    started = time.monotonic()
    runner.kill()
    took = time.monotonic() - started
    assert took < 5, f"on_kill took {took:.1f} s: Airflow SIGKILLs the task 5 s after SIGTERM"
    assert not _dask_jobs(k8s), "the job was not deleted"
    assert not _staged_runs(tmp_path), f"the staged run was left: {_staged_runs(tmp_path)}"
    waiter.join(timeout=60)
    assert outcome and outcome[0] is not None, "the killed task reported success"
    k8s.sim.wait_for(lambda: not k8s.sim.live_processes(), timeout=30, what="the job's pods stopped")
    assert not _staged_runs(tmp_path), f"a stopping pod put the run back: {_staged_runs(tmp_path)}"
