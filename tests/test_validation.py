"""Bad input gets a clear error naming the field, the value and the fix, at construction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from airflow_provider_flyte import Resources, ReusePolicy, TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.spark import Spark


def test_reusable_with_plugin_config_is_refused_with_flytes_message():
    with pytest.raises(FlyteConfigError, match=r"Cannot set plugin_config when environment is reusable\."):
        TaskEnvironment(name="elastic_env", plugin_config=Elastic(nnodes=1, nproc_per_node=1), reusable=ReusePolicy())


@dataclass
class NotRegistered(PluginConfig):
    size: int = 1


@pytest.mark.parametrize("config", [NotRegistered(), {"spark.executor.instances": "2"}])
def test_unknown_plugin_config_type_lists_the_registered_ones(config):
    with pytest.raises(FlyteConfigError) as info:
        TaskEnvironment(name="env", plugin_config=config)
    message = str(info.value)
    assert "TaskEnvironment.plugin_config" in message
    for name in ("Spark", "RayJobConfig", "Dask", "Elastic"):
        assert name in message


def test_elastic_config_in_the_spark_operator_names_the_field():
    from airflow_provider_flyte.operators.spark import FlyteSparkOperator
    from airflow_provider_flyte.plugins.pytorch import Elastic

    with pytest.raises(FlyteConfigError, match=r"FlyteSparkOperator\.plugin_config.*FlyteElasticOperator|FlyteSparkOperator\.plugin_config"):
        FlyteSparkOperator(task_id="t", python_callable=lambda: 1, plugin_config=Elastic(nnodes=1, nproc_per_node=1))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "Bad Name"}, "TaskEnvironment.name"),
        ({"name": "ok", "description": 300}, "TaskEnvironment.description"),  # too long is truncated (Flyte)
        ({"name": "ok", "env_vars": {"A": 1}}, "TaskEnvironment.env_vars"),
    ],
)
def test_environment_fields_are_checked(kwargs, field):
    with pytest.raises(FlyteConfigError, match=field):
        TaskEnvironment(**kwargs)


@pytest.mark.parametrize(("kwargs", "field"), [({"cpu": "lots"}, "Resources.cpu"), ({"memory": "4 parsecs"}, "Resources.memory")])
def test_resources_are_checked(kwargs, field):
    with pytest.raises(FlyteConfigError, match=field):
        Resources(**kwargs)


def test_templates_are_validated_after_rendering():
    config = Spark(spark_conf={"spark.executor.instances": "{{ params.executors }}"})
    config.spark_conf["spark.executor.instances"] = 8  # what native rendering would produce
    assert config.validated().spark_conf == {"spark.executor.instances": "8"}
    unrendered = Spark(spark_conf={"spark.executor.instances": "{{ params.executors }}"}, hadoop_conf="{{ x }}")
    with pytest.raises(FlyteConfigError, match=r"Spark\.hadoop_conf.*not rendered"):
        unrendered.validated()
