"""OpenLineage on the simulated Kubernetes (docs/lineage.md), through dag.test() in a child process with the
openlineage provider's file transport: the SparkApplication's driver reads the six parent properties from its
``sparkConf``, and a DaskJob's scheduler pod (the task) and worker pod see ``OPENLINEAGE_PARENT_ID``; each is the
START event's run of its task. The COMPLETE event's facet names the Kubernetes object."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_DAGS
from tests.engines.test_lineage import PARENT_KEYS, run_child, task_event


def test_sparkapplication_and_daskjob_pods_get_the_task_runs_parent(k8s: Any, monkeypatch: pytest.MonkeyPatch,
                                                                    tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "false")
    result, events = run_child(str(TEST_DAGS / "lineage_k8s_dag.py"), "lineage_k8s_dag", tmp_path, switches=True)
    assert result["state"] == "success", result["states"]

    start = task_event(events, "spark_parent", "START")
    conf = result["xcoms"]["spark_parent"]
    assert set(conf) >= PARENT_KEYS, conf
    assert conf["spark.openlineage.parentRunId"] == start["run"]["runId"]
    facet = task_event(events, "spark_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert facet["placement"] == "kubernetes" and facet["job"]["kind"] == "SparkApplication", facet
    assert facet["job"]["name"] and facet["job"]["uid"] and facet["job"]["namespace"], facet

    dask_start = task_event(events, "dask_parent", "START")
    expected = f"{dask_start['job']['namespace']}/lineage_k8s_dag.dask_parent/{dask_start['run']['runId']}"
    dask = result["xcoms"]["dask_parent"]
    assert dask["task"]["OPENLINEAGE_PARENT_ID"] == expected
    assert [w["OPENLINEAGE_PARENT_ID"] for w in dask["workers"]] == [expected]
    facet = task_event(events, "dask_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert facet["job"]["kind"] == "DaskJob" and facet["clusterSize"] == {"workers": 1}, facet


def test_rayjob_and_pytorchjob_pods_get_the_task_runs_parent(k8s: Any, monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "false")
    dag_id = "lineage_k8s_more"
    result, events = run_child(str(TEST_DAGS / f"{dag_id}.py"), dag_id, tmp_path, switches=True)
    assert result["state"] == "success", result["states"]

    def expected(task_id: str) -> str:
        start = task_event(events, task_id, "START")
        return f"{start['job']['namespace']}/{dag_id}.{task_id}/{start['run']['runId']}"

    # Ray: the job's driver (the RayJob's entrypoint) and a Ray task pinned to each node (head only: a worker group crash-looped 2 runs of 4 here)
    ray = result["xcoms"]["ray_parent"]
    assert ray["task"]["OPENLINEAGE_PARENT_ID"] == expected("ray_parent"), ray["task"]
    assert len({w["pod"] for w in ray["workers"]}) == 1, ray["workers"]
    assert [w["OPENLINEAGE_PARENT_ID"] for w in ray["workers"]] == [expected("ray_parent")], ray["workers"]
    facet = task_event(events, "ray_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert facet["placement"] == "kubernetes" and facet["job"]["kind"] == "RayJob", facet

    # PyTorch Elastic: both ranks, one in each of the PyTorchJob's two pods
    ranks = result["xcoms"]["elastic_parent"]["workers"]
    assert sorted(r["rank"] for r in ranks) == [0, 1] and len({r["pod"] for r in ranks}) == 2, ranks
    assert [r["OPENLINEAGE_PARENT_ID"] for r in ranks] == [expected("elastic_parent")] * 2, ranks
    facet = task_event(events, "elastic_parent", "COMPLETE")["run"]["facets"]["flyte"]
    assert facet["placement"] == "kubernetes" and facet["job"]["kind"] == "PyTorchJob", facet
