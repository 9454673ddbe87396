"""Kueue on each kind's manifest: created suspended with the queue-name label, where its CRD declares the field."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests import dask, kueue, pytorch, ray, spark
from airflow_provider_flyte.manifests.base import MANAGED_BY, JobTarget
from airflow_provider_flyte.manifests.known_fields import unknown_fields
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark
from tests.support import crds

TARGET = JobTarget(name="etl-crunch-0a1b2c3d", namespace="jobs", image="repo/img:1",
                   labels={"dag_id": "etl", "task_id": "crunch", **MANAGED_BY}, command=["python", "-m", "x"],
                   main_file="local:///app/main.py")
RAY = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)], shutdown_after_job_finishes=True)


def _bodies() -> dict[str, dict[str, Any]]:
    return {
        "SparkApplication": spark.build_manifest(Spark().validated(), TARGET),
        "RayJob": ray.build_manifest(RAY.validated(), TARGET),
        "PyTorchJob": pytorch.build_manifest(Elastic(nnodes=2, nproc_per_node=1).validated(), TARGET),
    }


@pytest.mark.parametrize("kind", ["SparkApplication", "RayJob", "PyTorchJob"])
def test_a_queued_job_is_created_suspended_with_the_queue_label(kind: str) -> None:
    body = _bodies()[kind]
    assert not kueue.suspended(body) and kueue.queue_of(body) == ""
    kueue.apply_queue(body, "team-a", source="TaskEnvironment.kueue_queue")
    assert body["metadata"]["labels"][kueue.QUEUE_LABEL] == "team-a"
    assert body["metadata"]["labels"]["task_id"] == "crunch"  # the task's labels stay
    where = body["spec"]["runPolicy"] if kind == "PyTorchJob" else body["spec"]
    assert where["suspend"] is True
    assert kueue.suspended(body) and kueue.queue_of(body) == "team-a"
    # the field is the CRD's own: valid against its schema, and not dropped by a real API server
    assert crds.errors(body) == []
    assert unknown_fields(body) == []


def test_each_suspend_field_is_declared_by_its_crd() -> None:
    for kind, path in kueue.SUSPEND_PATHS.items():
        body = _bodies()[kind]
        node = crds.schema(kind, body["apiVersion"])
        for key in path:
            node = node["properties"][key]
        assert node["type"] == "boolean", (kind, path)


def test_a_dask_job_cannot_wait_in_a_queue_and_says_what_to_do() -> None:
    body = dask.build_manifest(Dask().validated(), TARGET)
    assert "suspend" not in crds.schema("DaskJob", body["apiVersion"])["properties"]["spec"]["properties"]
    with pytest.raises(FlyteConfigError, match=r"connection 'k8s' extra kueue_queue: a DaskJob .*no suspend field"
                                               r""".*\(got 'team-a'\).*kueue_queue=\"\""""):
        kueue.apply_queue(body, "team-a", source="connection 'k8s' extra kueue_queue")


def test_a_ray_job_that_keeps_its_cluster_cannot_be_queued() -> None:
    body = ray.build_manifest(RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
                              .validated(), TARGET)
    with pytest.raises(FlyteConfigError, match="shutdownAfterJobFinishes is false.*shutdown_after_job_finishes=True"):
        kueue.apply_queue(body, "team-a", source="[flyte] kubernetes_kueue_queue")


def test_a_dask_or_cluster_keeping_ray_task_with_a_queue_is_refused_when_the_dag_is_parsed() -> None:
    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.operators.base import FlyteOperator

    keeps = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    for config, problem in ((Dask(), "a DaskJob cannot wait in a Kueue queue"),
                            (keeps, "KubeRay refuses a suspended RayJob")):
        env = TaskEnvironment(name="e", kueue_queue="team-a", plugin_config=config)
        with pytest.raises(FlyteConfigError, match=f"TaskEnvironment.kueue_queue: {problem}"):
            FlyteOperator(task_id="t", python_callable=print, env=env, conn_id="k8s")
    # no queue for this task, or no Kubernetes run at all: nothing to refuse
    FlyteOperator(task_id="t", python_callable=print, conn_id="k8s",
                  env=TaskEnvironment(name="e", kueue_queue="", plugin_config=Dask()))
    FlyteOperator(task_id="t", python_callable=print, env=TaskEnvironment(name="e", kueue_queue="q", plugin_config=Dask()))
    FlyteOperator(task_id="t", python_callable=print, conn_id="k8s", env=TaskEnvironment(
        name="e", kueue_queue="team-a", plugin_config=RAY))
