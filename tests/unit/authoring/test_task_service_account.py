"""Flyte's ``service_account`` task parameter (issue 27): accepted by ``@env.task`` and ``.override``,
carried to the TaskSpec and on Kubernetes to every pod, as ``TaskEnvironment(service_account=)`` is."""

from __future__ import annotations

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.authoring.spec_builder import build_spec
from airflow_provider_flyte.authoring.task_params import FLYTE_TASK_PARAMS, flyte_to_airflow
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.pod_settings import apply_pod_settings
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.spark import Spark


def _map(kwargs, env=None):
    return flyte_to_airflow(kwargs, env, where="flyte_task", operator_class=FlyteOperator)


def test_service_account_is_a_flyte_task_parameter_that_clones_the_environment():
    assert "service_account" in FLYTE_TASK_PARAMS
    base = TaskEnvironment(name="e", service_account="env-sa")
    out, env = _map({"service_account": "task-sa"}, base)
    assert out == {} and env.service_account == "task-sa" and base.service_account == "env-sa"
    out, env = _map({"service_account": "task-sa"})
    assert env.service_account == "task-sa"


def test_service_account_is_checked_as_the_environments_is():
    with pytest.raises(FlyteConfigError, match=r"^flyte_task\.service_account: not a Kubernetes service account"):
        _map({"service_account": "My SA"})


def test_the_spec_and_the_pods_carry_the_tasks_service_account():
    _, env = _map({"service_account": "task-sa"}, TaskEnvironment(name="e", service_account="env-sa"))
    spec = build_spec(TaskInfo(dag_id="d", task_id="t", run_id="r"), Spark(), env, "k8s")
    assert spec.service_account == "task-sa"
    body = {"kind": "SparkApplication", "metadata": {"name": "j"},
            "spec": {"driver": {}, "executor": {}}}
    apply_pod_settings(body, job_name="j", service_account=spec.service_account)
    assert body["spec"]["driver"]["serviceAccount"] == "task-sa"
