"""Elastic with a conn_id that names no Kubernetes connection (issue 27): missing, or of another type."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.plugins.pytorch import Elastic

two_nodes_missing = TaskEnvironment(name="two_nodes_missing", conn_id="pytorch_conn_missing",
                                    plugin_config=Elastic(nnodes=2, nproc_per_node=1))
two_nodes_http = TaskEnvironment(name="two_nodes_http", conn_id="pytorch_conn_http",
                                 plugin_config=Elastic(nnodes=2, nproc_per_node=1))
one_node_http = TaskEnvironment(name="one_node_http", conn_id="pytorch_conn_http",
                                plugin_config=Elastic(nnodes=1, nproc_per_node=1))


@dag(dag_id="pytorch_conn", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def pytorch_conn():
    @two_nodes_missing.task
    def missing() -> None:
        raise AssertionError("must not run")

    @two_nodes_http.task
    def http() -> None:
        raise AssertionError("must not run")

    @one_node_http.task
    def http_one_node() -> None:
        raise AssertionError("must not run")

    missing()
    http()
    http_one_node()


pytorch_conn()
