"""TaskSpec: plain data that round-trips through JSON and rebuilds the exact config."""

from __future__ import annotations

import json

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.core.spec import SPEC_FORMAT_VERSION, TaskSpec
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.operators.base import build_spec
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.rebuild import config_of, resources_of
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.resources import Resources

CONFIGS = [
    Spark(spark_conf={"spark.executor.instances": "2"}, hadoop_conf={"fs.s3a.endpoint": "x"}),
    RayJobConfig(head_node_config=HeadNodeConfig(ray_start_params={"num-cpus": "1"}),
                 worker_node_config=[WorkerNodeConfig(group_name="g", replicas=2,
                                                      requests=Resources(cpu="1", memory="1Gi"))]),
    Dask(workers=WorkerGroup(number_of_workers=3, resources=Resources(cpu=("1", "2"), memory="2Gi"))),
    Elastic(nnodes="1:2", nproc_per_node=2, rdzv_configs={"timeout": 60}),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: type(c).__name__)
def test_a_spec_round_trips_through_json_and_rebuilds_the_config(config, tmp_path):
    env = TaskEnvironment(name="e", resources=Resources(cpu=("1", "2"), memory="1Gi"), env_vars={"A": "1"},
                          image="img:1", include=("test_spec.py",))
    task = TaskInfo(dag_id="d", task_id="t", run_id="r", map_index=2, try_number=3, dag_file="/x/d.py",
                    project_root=tmp_path)
    spec = build_spec(task, config.validated(), env, "conn")
    text = json.dumps(spec.to_json())
    back = TaskSpec.from_json(json.loads(text))
    assert back == spec
    assert config_of(back) == config.validated()
    assert type(config_of(back)) is type(config)
    assert resources_of(back) == env.resources
    assert back.task.project_root == tmp_path


def test_a_spec_from_a_newer_format_is_refused_with_the_fix():
    data = TaskSpec().to_json()
    data["format_version"] = SPEC_FORMAT_VERSION + 1
    with pytest.raises(FlyteConfigError) as info:
        TaskSpec.from_json(data)
    message = str(info.value)
    assert f"format {SPEC_FORMAT_VERSION + 1}" in message and "upgrade airflow-provider-flyte in the image" in message


def test_something_that_is_not_a_spec_is_refused():
    with pytest.raises(FlyteConfigError, match="TaskSpec.format_version.*not a task spec"):
        TaskSpec.from_json({"task": {}})


def test_an_unregistered_config_type_in_a_spec_names_the_registered_ones():
    with pytest.raises(FlyteConfigError) as info:
        config_of(TaskSpec(config_type="somewhere.Unknown", config={}))
    assert "somewhere.Unknown" in str(info.value) and "Spark" in str(info.value)
