"""Two Kubernetes behaviours whose tests could not fail (issue 21), on the API server + operator simulator.

* A secret reaches a pod's log masked: in a pod the runner's ``register_sensitive`` is the only
  registration of the task's sensitive env vars (no ``TaskEnvironment`` is built there), and the
  pod's "Running ... with <Config>" line, forwarded to the task log, is redacted with what it knows.
* An image that cannot be pulled fails the task at once with the fast-fail message, which the
  startup-timeout path cannot produce (that one names the waiting reason too, so a time bound
  alone could not tell them apart).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_flyte
from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS
from tests.kubernetes.test_runner import remote_tasks  # noqa: F401  (fixture)

_SOURCE = str(Path(airflow_provider_flyte.__file__).resolve().parents[1])


def _runner(k8s: Any, config: Dask, env: TaskEnvironment, fn: Any, task_id: str, startup_timeout: float) -> TaskRunner:
    spec = build_spec(TaskInfo(dag_id="k8s", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                      config.validated(), env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": startup_timeout, "poll_interval": 0.5})
    return TaskRunner(spec, config.validated(), fn)


def test_a_sensitive_env_var_is_masked_in_the_pods_log(k8s: Any, remote_tasks: Any,  # noqa: F811
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    planted = f"tok{uuid.uuid4().hex}"
    # The pod prints its config; the planted value is there under a key no rule calls sensitive (an image
    # tag), so only its registration as the API_TOKEN env var's value can mask it.
    config = Dask(workers=WorkerGroup(number_of_workers=1, image=f"sim/venv:{planted}"))
    # The pod imports the provider from the tree under test (the simulated image is this machine's venv).
    env = TaskEnvironment(name="k8s", image="sim/venv:1", env_vars={"API_TOKEN": planted, "PYTHONPATH": _SOURCE})
    result = _runner(k8s, config, env, remote_tasks.dask_workers_and_square, "masked", 120).run((3,), {})
    assert result == {"workers": 1, "square": 9}
    out = capfd.readouterr().out
    pod_lines = [line for line in out.splitlines() if "[k8s-masked-" in line]  # forwarded from the pod's log
    config_lines = [line for line in pod_lines if "Running k8s.masked with Dask" in line]
    assert config_lines, "\n".join(pod_lines[-30:])
    assert all(planted not in line and "sim/venv:***" in line for line in config_lines), config_lines


def test_an_image_that_cannot_be_pulled_fails_fast_not_by_the_startup_timeout(k8s: Any,
                                                                                remote_tasks: Any) -> None:  # noqa: F811
    from airflow_provider_flyte.remote.jobs import KubernetesJobError

    startup_timeout = 45.0
    config = Dask(workers=WorkerGroup(number_of_workers=1))
    env = TaskEnvironment(name="k8s", image="sim/venv:pull-fails")
    started = time.monotonic()
    with pytest.raises(KubernetesJobError) as info:
        _runner(k8s, config, env, remote_tasks.dask_workers_and_square, "pull", startup_timeout).run((3,), {})
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert "cannot start: pod " in message and ("ImagePullBackOff" in message or "ErrImagePull" in message), message
    assert "did not start within" not in message, message
    assert elapsed < startup_timeout - 15, f"failed after {elapsed:.0f} s: the startup timeout, not the fast path"
