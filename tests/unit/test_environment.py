"""Bad input gets a clear error naming the field, the value and the fix, at construction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_flyte import Resources, ReusePolicy, TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.spark import Spark
from tests.support.config_errors import raises_config_error


def test_reusable_with_plugin_config_is_refused_with_flytes_message():
    with raises_config_error("TaskEnvironment.plugin_config", "Elastic", fix="drop reusable=...",
                             problem="Cannot set plugin_config when environment is reusable."):
        TaskEnvironment(name="elastic_env", plugin_config=Elastic(nnodes=1, nproc_per_node=1), reusable=ReusePolicy())


@dataclass
class NotRegistered(PluginConfig):
    size: int = 1


@pytest.mark.parametrize(
    ("config", "value", "problem"),
    [(NotRegistered(), "NotRegistered", "NotRegistered is not a registered plugin config"),
     ({"spark.executor.instances": "2"}, {"spark.executor.instances": "2"}, "dict is not a plugin config")],
    ids=["unregistered", "dict"],
)
def test_unknown_plugin_config_type_lists_the_registered_ones(config, value, problem):
    with raises_config_error("TaskEnvironment.plugin_config", value, fix="use one of Dask, Elastic, RayJobConfig, Spark",
                             problem=problem):
        TaskEnvironment(name="env", plugin_config=config)


def test_elastic_config_in_the_spark_operator_names_the_field():
    from airflow_provider_flyte.operators.spark import FlyteSparkOperator
    from airflow_provider_flyte.plugins.pytorch import Elastic

    with raises_config_error("FlyteSparkOperator.plugin_config", "Elastic", fix="pass a Spark(...)",
                             problem="FlyteSparkOperator runs Spark configs"):
        FlyteSparkOperator(task_id="t", python_callable=lambda: 1, plugin_config=Elastic(nnodes=1, nproc_per_node=1))


@pytest.mark.parametrize(
    ("kwargs", "field", "value", "fix"),
    [
        ({"name": "Bad Name"}, "TaskEnvironment.name", "Bad Name", 'e.g. "spark_env"'),
        ({"name": 123}, "TaskEnvironment.name", 123, 'e.g. "spark_env"'),
        ({"name": "ok", "description": 300}, "TaskEnvironment.description", 300, "pass a short text"),
        ({"name": "ok", "env_vars": {"A": 1}}, "TaskEnvironment.env_vars", {"A": 1}, "quote the values"),
        ({"name": "ok", "env_vars": ["A=1"]}, "TaskEnvironment.env_vars", ["A=1"], "pass a dict, e.g. env_vars={'A': '1'}"),
        ({"name": "ok", "conn_id": 123}, "TaskEnvironment.conn_id", 123, "pass conn_id as a string"),
        ({"name": "ok", "resources": {"cpu": 2}}, "TaskEnvironment.resources", {"cpu": 2}, 'Resources(cpu="2"'),
        ({"name": "ok", "interruptible": "yes"}, "TaskEnvironment.interruptible", "yes", "pass True or False"),
    ],
)
def test_environment_fields_are_checked(kwargs, field, value, fix):
    with raises_config_error(field, value, fix):
        TaskEnvironment(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field", "value", "fix"),
    [
        ({"cpu": "lots"}, "Resources.cpu", "lots", '"500m"'),
        ({"memory": "4 parsecs"}, "Resources.memory", "4 parsecs", '"4Gi"'),
        ({"cpu": ("4", "2")}, "Resources.cpu", ("4", "2"), "cpu=('2', '4')"),
        ({"memory": ("4Gi", "1Gi")}, "Resources.memory", ("4Gi", "1Gi"), "memory=('1Gi', '4Gi')"),
    ],
)
def test_resources_are_checked(kwargs, field, value, fix):
    with raises_config_error(field, value, fix):
        Resources(**kwargs)


def test_request_within_limit_is_accepted():
    assert Resources(cpu=("2", "4"), memory=("1Gi", "4Gi")).cpu_request == 2


def test_the_formatter_never_raises():
    class BrokenRepr:
        def __repr__(self) -> str:
            raise RuntimeError("broken")

    error = FlyteConfigError(123, BrokenRepr(), "problem", "fix")  # type: ignore[arg-type]
    assert str(error) == "123: problem (got <BrokenRepr object>). Fix: fix"


def test_templates_are_validated_after_rendering():
    config = Spark(spark_conf={"spark.executor.instances": "{{ params.executors }}"})
    config.spark_conf["spark.executor.instances"] = 8  # what native rendering would produce
    assert config.validated().spark_conf == {"spark.executor.instances": "8"}
    unrendered = Spark(spark_conf={"spark.executor.instances": "{{ params.executors }}"}, hadoop_conf="{{ x }}")
    with raises_config_error("Spark.hadoop_conf", "{{ x }}", fix="use this config in a Flyte operator's plugin_config",
                             problem="the template was not rendered"):
        unrendered.validated()


def test_an_undeclared_param_in_a_plugin_config_is_a_parse_error_and_a_clear_render_error():
    from airflow.sdk import DAG, Param

    from airflow_provider_flyte.operators.dask import FlyteDaskOperator
    from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup

    def config():
        return Dask(workers=WorkerGroup(number_of_workers="{{ params.n }}"))

    fix = "declare it, e.g. @dag(params={'n': Param(2, type='integer')})"
    with raises_config_error("FlyteDaskOperator.plugin_config", ["n"], fix=fix,
                             problem="a plugin config template uses a Param the DAG does not declare"), \
            DAG("undeclared", schedule=None):
        FlyteDaskOperator(task_id="t", python_callable=print, plugin_config=config())
    with DAG("declared", schedule=None, params={"n": Param(2, type="integer")}):
        task = FlyteDaskOperator(task_id="t", python_callable=print, plugin_config=config())
    task.render_template_fields({"params": {"n": 3}})
    assert task.resolved_config().workers.number_of_workers == 3
    # Rendering without the Param (jinja's UndefinedError) names it too, instead of "'dict object' has no attribute".
    task.plugin_config = config()
    with raises_config_error("FlyteDaskOperator.plugin_config", ["n"], fix=fix, problem="has no attribute 'n'"):
        task.render_template_fields({"params": {}})
