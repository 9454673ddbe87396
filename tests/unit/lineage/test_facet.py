"""The operator's ``flyte`` run facet (lineage/facet.py) and what the operator puts in it before a run."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_flyte import ReusePolicy, TaskEnvironment
from airflow_provider_flyte.lineage.facet import FACET_NAME, FlyteRunFacet, cluster_size, operator_lineage
from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark


def test_cluster_size_of_each_engine():
    assert cluster_size(Spark(spark_conf={"spark.executor.instances": "3"}).to_dict()) == {"executors": 3}
    assert cluster_size(Spark().to_dict()) == {}
    ray = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="a", replicas=2),
                                           WorkerNodeConfig(group_name="b", replicas=1)])
    assert cluster_size(ray.to_dict()) == {"workers": 3}
    assert cluster_size(Dask(workers=WorkerGroup(number_of_workers=4)).to_dict()) == {"workers": 4}
    assert cluster_size(Elastic(nnodes="1:2", nproc_per_node=2).to_dict()) == {"nodes": "1:2", "processesPerNode": 2}
    assert cluster_size(None) == {}


def test_the_facet_serializes_with_its_fields():
    from openlineage.client.serde import Serde

    lineage = operator_lineage(engine="Dask", placement="warm", config=Dask().to_dict(),
                               job={"daskSchedulerAddress": "tcp://127.0.0.1:8786"})
    facet = lineage.run_facets[FACET_NAME]
    assert isinstance(facet, FlyteRunFacet)
    data = Serde.to_dict(facet)
    assert data["engine"] == "Dask" and data["placement"] == "warm"
    assert data["clusterSize"] == {"workers": 1}
    assert data["job"] == {"daskSchedulerAddress": "tcp://127.0.0.1:8786"}
    assert data["_schemaURL"].endswith("lineage.md#the-flyte-run-facet")
    assert lineage.inputs == [] and lineage.outputs == []  # the listener adds the task's inlets/outlets


def _fn() -> None:
    return None


def test_before_the_run_the_operator_says_engine_and_the_workers_placement():
    with DAG("facet_dag", schedule=None, start_date=datetime(2025, 1, 1)):
        local = FlyteDaskOperator(task_id="local", python_callable=_fn, plugin_config=Dask())
        warm = FlyteDaskOperator(task_id="warm", python_callable=_fn,
                                 env=TaskEnvironment(name="w", plugin_config=Dask(), reusable=ReusePolicy(replicas=1)))
        remote = FlyteDaskOperator(task_id="remote", python_callable=_fn, plugin_config=Dask(), conn_id="somewhere")
    facets = {op.task_id: op.get_openlineage_facets_on_start().run_facets[FACET_NAME]
              for op in (local, warm, remote)}
    assert {k: (f.engine, f.placement, f.job) for k, f in facets.items()} == {
        "local": ("Dask", "local", {}), "warm": ("Dask", "warm", {}), "remote": ("Dask", None, {})}
