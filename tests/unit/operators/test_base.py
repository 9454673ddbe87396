"""FlyteOperator through the engine operators (operators/<engine>.py): each runs its own config type, with its links."""

from __future__ import annotations

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.links.dask import DaskDashboardLink
from airflow_provider_flyte.links.kubernetes import KubernetesJobLink, KubernetesPodLink
from airflow_provider_flyte.links.ray import RayDashboardLink
from airflow_provider_flyte.links.spark import SparkUILink
from airflow_provider_flyte.operators.dask import FlyteDaskOperator
from airflow_provider_flyte.operators.pytorch import FlyteElasticOperator
from airflow_provider_flyte.operators.ray import FlyteRayOperator
from airflow_provider_flyte.operators.spark import FlyteSparkOperator
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.plugins.spark import Spark


def _fn() -> int:
    return 1


OPERATORS = [(FlyteSparkOperator, Spark, SparkUILink), (FlyteRayOperator, RayJobConfig, RayDashboardLink),
             (FlyteDaskOperator, Dask, DaskDashboardLink), (FlyteElasticOperator, Elastic, None)]


@pytest.mark.parametrize(("operator", "config", "link"), OPERATORS)
def test_each_operator_names_its_config_and_links(operator, config, link) -> None:
    assert operator.plugin_type is config
    kinds = [type(x) for x in operator.operator_extra_links]
    assert kinds[-2:] == [KubernetesJobLink, KubernetesPodLink]
    assert kinds[:-2] == ([link] if link else [])


def test_a_config_of_another_engine_is_refused_naming_the_field() -> None:
    with pytest.raises(FlyteConfigError) as err:
        FlyteSparkOperator(task_id="t", python_callable=_fn, plugin_config=Elastic(nnodes=1, nproc_per_node=1))
    assert err.value.field == "FlyteSparkOperator.plugin_config"
    assert "FlyteSparkOperator runs Spark configs" in err.value.problem


def test_an_engine_operator_needs_a_config() -> None:
    with pytest.raises(FlyteConfigError, match=r"FlyteRayOperator.plugin_config: this operator needs a plugin config"):
        FlyteRayOperator(task_id="t", python_callable=_fn)


def test_the_environment_supplies_config_connection_and_queue() -> None:
    env = TaskEnvironment(name="etl", plugin_config=Spark(), conn_id="spark_cluster", queue="spark")
    op = FlyteSparkOperator(task_id="t", python_callable=_fn, env=env)
    assert isinstance(op.plugin_config, Spark)
    assert op.conn_id == "spark_cluster"
    assert op.queue == "spark"
    assert op.flyte_links == {}


def test_a_blank_connection_id_is_refused() -> None:
    with pytest.raises(FlyteConfigError, match=r"FlyteDaskOperator.conn_id: not a connection id"):
        FlyteDaskOperator(task_id="t", python_callable=_fn, plugin_config=Dask(), conn_id="  ")


def test_parsing_a_dag_loads_no_runtime_module(tmp_path):
    """DAG parse builds the operator, not the runner: the task runtime, the bundle writer (tarfile)
    and difflib load when a task runs or a key is wrong, not in the DAG processor (issue 27)."""
    import subprocess
    import sys

    (tmp_path / "dag_parse_cost.py").write_text(
        "from datetime import datetime\n"
        "from airflow.sdk import dag\n"
        "from airflow_provider_flyte import flyte_task\n"
        "from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup\n"
        "from airflow_provider_flyte.plugins.pytorch import Elastic\n"
        "from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig\n"
        "@dag(schedule=None, start_date=datetime(2025, 1, 1))\n"
        "def parse_cost():\n"
        "    @flyte_task(plugin_config=Dask(workers=WorkerGroup(number_of_workers=2)))\n"
        "    def a(): ...\n"
        "    @flyte_task(plugin_config=RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name='w', replicas=1)]))\n"
        "    def b(): ...\n"
        "    @flyte_task(plugin_config=Elastic(nnodes=1, nproc_per_node=2))\n"
        "    def c(): ...\n"
        "    a() >> b() >> c()\n"
        "parse_cost()\n")
    code = (
        "import sys\nfrom pathlib import Path\nfrom airflow.dag_processing.dagbag import BundleDagBag\n"
        f"bag = BundleDagBag(dag_folder={str(tmp_path)!r}, bundle_path=Path({str(tmp_path)!r}))\n"
        "assert not bag.import_errors and len(bag.dags) == 1, (bag.import_errors, bag.dags)\n"
        "runtime = ('airflow_provider_flyte.runtime', 'airflow_provider_flyte.bundle.build', "
        "'airflow_provider_flyte.bundle.ignore', 'airflow_provider_flyte.hygiene', 'tarfile', 'difflib')\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(runtime)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LOADED []" in out, out[-2000:]
