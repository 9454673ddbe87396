"""Secret values of a plugin config and of ``env_vars`` travel through the job's Secret on Kubernetes.

Planted: a ``spark_conf`` password, a ``hadoop_conf`` secret key and an ``env_vars`` secret. None is in the
staged spec.json (the pod reads it back and says), in the job object or its pods as the API server stored
them, or in the task log; the task still gets every real value, on the driver and in its workers.
"""

from __future__ import annotations

import json
import logging
import secrets
from pathlib import Path
from typing import Any

import pytest

import airflow_provider_flyte
from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.runtime.runner import TaskRunner
from tests.conftest import TEST_DAGS
from tests.kubernetes.test_dags import on_k8s  # noqa: F401  (fixture)
from tests.kubernetes.test_pod_settings import digest
from tests.kubernetes.test_runner import remote_tasks  # noqa: F401  (fixture)

CONF, HADOOP, ENV = (f"{what}-{secrets.token_hex(6)}" for what in ("confpw", "s3secret", "awssecret"))


@pytest.fixture
def remote(remote_tasks: Any) -> Any:  # noqa: F811  (the staging store and the DAG folder on sys.path)
    import secret_places_remote

    return secret_places_remote


#: The pods import the provider from where this process does (the simulator's image is this machine's venv).
PROVIDER_SRC = str(Path(airflow_provider_flyte.__file__).resolve().parents[1])


def _run(k8s: Any, config: Any, fn: Any, task_id: str) -> Any:
    env = TaskEnvironment(name="k8s", image="sim/venv:1",
                          env_vars={"AWS_SECRET_ACCESS_KEY": ENV, "MODE": "batch", "PYTHONPATH": PROVIDER_SRC})
    spec = build_spec(TaskInfo(dag_id="k8s", task_id=task_id, run_id="manual__1", project_root=TEST_DAGS),
                      config.validated(), env, k8s.conn_id)
    spec = spec.with_changes(options={"deferrable": False, "startup_timeout": 120, "poll_interval": 0.5})
    return TaskRunner(spec, config.validated(), fn).run((), {})


def _stored(k8s: Any, since: int) -> list[dict[str, Any]]:
    """Every object (but the job's Secret) as the API server stored it after ``since``, each version."""
    return [e.obj for e in k8s.server.store.events_after(since) if e.res.plural not in ("secrets", "events")]


def _assert_nowhere(k8s: Any, since: int, caplog: pytest.LogCaptureFixture, *values: str) -> None:
    stored = _stored(k8s, since)
    for obj in stored:
        text = json.dumps(obj)
        assert not [v for v in values if v in text], f"{obj['kind']} {obj['metadata']['name']} holds a secret"
    assert not [v for v in values if v in caplog.text]


def test_spark_conf_hadoop_conf_and_env_secrets_reach_the_driver_through_the_jobs_secret(
        k8s: Any, remote: Any, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_flyte.plugins.spark import Spark

    config = Spark(spark_conf={"spark.executor.instances": "1", "spark.flyte.test.password": CONF},
                   hadoop_conf={"fs.s3a.secret.key": HADOOP})
    since = k8s.server.store.resource_version
    with caplog.at_level(logging.INFO):
        result = _run(k8s, config, remote.spark_sees_its_secrets, "spark_secrets")
    assert result["spec_holds"] is False  # the staged spec.json the pod read held none of them
    assert {k: result[k] for k in ("conf", "hadoop", "env", "executor_env")} == {
        "conf": digest(CONF), "hadoop": digest(HADOOP), "env": digest(ENV), "executor_env": digest(ENV)}
    kinds = {obj["kind"] for obj in _stored(k8s, since)}
    assert {"SparkApplication", "Pod"} <= kinds, kinds
    _assert_nowhere(k8s, since, caplog, CONF, HADOOP, ENV)
    (app,) = [o for o in _stored(k8s, since) if o["kind"] == "SparkApplication"][:1]
    assert app["spec"]["sparkConf"]["spark.executor.instances"] == "1"  # the other properties stay
    (secret,) = {e.obj["metadata"]["name"] for e in k8s.server.store.events_after(since) if e.res.plural == "secrets"}
    assert secret == f"{app['metadata']['name']}-secrets"


def test_env_secrets_reach_every_dask_pod_through_the_jobs_secret(k8s: Any, remote: Any,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

    since = k8s.server.store.resource_version
    with caplog.at_level(logging.INFO):
        result = _run(k8s, Dask(workers=WorkerGroup(number_of_workers=1)), remote.dask_sees_its_secrets, "dask_secrets")
    assert result == {"env": digest(ENV), "workers": [digest(ENV)], "spec_holds": False}
    _assert_nowhere(k8s, since, caplog, ENV)
    pods = [o for o in _stored(k8s, since) if o["kind"] == "Pod"]
    assert len({p["metadata"]["name"] for p in pods}) >= 3  # scheduler, worker, job runner
    for pod in pods:  # the plain env var is still a plain value
        envs = [e for c in pod["spec"]["containers"] for e in c.get("env") or []]
        assert {"name": "MODE", "value": "batch"} in envs, pod["metadata"]["name"]



def test_values_rendered_from_variables_travel_through_the_jobs_secret(
        on_k8s: Any, dag_runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811  (fixture)
    """A ``{{ var.value.x }}`` in the plugin config and in ``env_vars``, under keys that look harmless."""
    conf, dsn = (f"{what}-{secrets.token_hex(6)}" for what in ("shopconf", "shopdsn"))
    monkeypatch.setenv("AIRFLOW_VAR_K8S_SHOP_CONF", conf)
    monkeypatch.setenv("AIRFLOW_VAR_K8S_SHOP_DSN", dsn)
    since = on_k8s.server.store.resource_version
    result = dag_runner.run("secret_places_k8s_templates.py", "k8s_templates")
    assert result.state == "success", result.states
    assert result.value("sees_its_variables") == {"conf": digest(conf), "env": digest(dsn), "spec_holds": False}
    assert {"SparkApplication", "Pod"} <= {obj["kind"] for obj in _stored(on_k8s, since)}
    for obj in _stored(on_k8s, since):
        text = json.dumps(obj)
        assert conf not in text and dsn not in text, f"{obj['kind']} {obj['metadata']['name']} holds a Variable's value"
