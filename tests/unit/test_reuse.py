"""``ReusePolicy``: Flyte's fields, defaults and rules; each bad value names the field, value and fix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_flyte import ReusePolicy, TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.dask import Dask
from airflow_provider_flyte.plugins.pytorch import Elastic
from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
from airflow_provider_flyte.plugins.spark import Spark


def _ray(**kwargs):
    return RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)], **kwargs)


def test_defaults_are_flytes():
    policy = ReusePolicy()
    assert policy.replicas == (2, 2)
    assert policy.idle_ttl == timedelta(seconds=30)
    assert policy.scaledown_ttl == timedelta(seconds=30)
    assert policy.concurrency == 1
    assert policy.scope == "global"
    assert (policy.min_replicas, policy.max_replicas) == (2, 2)


def test_int_and_timedelta_forms_and_round_trip():
    policy = ReusePolicy(replicas=(1, 3), idle_ttl=timedelta(minutes=2), scaledown_ttl=45, scope="run")
    assert policy.idle_ttl_s == 120 and policy.scaledown_ttl_s == 45
    assert ReusePolicy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(("kwargs", "field", "text"), [
    ({"idle_ttl": 5}, "ReusePolicy.idle_ttl", "at least 30 seconds"),
    ({"scaledown_ttl": timedelta(seconds=1)}, "ReusePolicy.scaledown_ttl", "at least 30 seconds"),
    ({"idle_ttl": "30"}, "ReusePolicy.idle_ttl", "int (seconds) or a timedelta"),
    ({"concurrency": 0}, "ReusePolicy.concurrency", "at least 1"),
    ({"concurrency": True}, "ReusePolicy.concurrency", "at least 1"),
    ({"replicas": (3, 1)}, "ReusePolicy.replicas", "minimum (3) is above the maximum (1)"),
    ({"replicas": 0}, "ReusePolicy.replicas", "at least one server"),
    ({"replicas": (1, 2, 3)}, "ReusePolicy.replicas", "an int or a tuple of two ints"),
    ({"replicas": None}, "ReusePolicy.replicas", "cannot be None"),
    ({"scope": "dag"}, "ReusePolicy.scope", '"global" or "run"'),
])
def test_bad_values_name_field_value_and_fix(kwargs, field, text):
    with pytest.raises(FlyteConfigError) as info:
        ReusePolicy(**kwargs)
    assert info.value.field == field
    assert text in str(info.value)
    assert "Fix:" in str(info.value)


@pytest.mark.parametrize("config", [Spark(), Dask(), _ray()])
def test_spark_ray_dask_can_be_reused(config):
    env = TaskEnvironment(name="warm", plugin_config=config, reusable=ReusePolicy(replicas=1))
    assert env.reusable == ReusePolicy(replicas=1)


def test_elastic_is_refused_with_flytes_message():
    with pytest.raises(FlyteConfigError, match=r"Cannot set plugin_config when environment is reusable\."):
        TaskEnvironment(name="e", plugin_config=Elastic(nnodes=1, nproc_per_node=1), reusable=ReusePolicy())


def test_reusable_must_be_a_policy():
    with pytest.raises(FlyteConfigError, match=r"Expected reusable to be of type ReusePolicy, got <class 'bool'>"):
        TaskEnvironment(name="e", reusable=True)
    assert TaskEnvironment(name="e", reusable="off").reusable is None


@pytest.mark.parametrize(("policy", "config", "field", "text"), [
    (ReusePolicy(replicas=(1, 3)), _ray(), "ReusePolicy.replicas", "exactly 1 replica"),
    (ReusePolicy(replicas=1, concurrency=2), _ray(), "ReusePolicy.concurrency", "doesn't support setting concurrency"),
    (ReusePolicy(replicas=1), _ray(shutdown_after_job_finishes=True), "RayJobConfig.shutdown_after_job_finishes",
     "must outlive individual jobs"),
    (ReusePolicy(replicas=1), _ray(ttl_seconds_after_finished=60), "RayJobConfig.ttl_seconds_after_finished",
     "ignored when a reuse policy is set"),
])
def test_ray_rules_are_flytes(policy, config, field, text):
    with pytest.raises(FlyteConfigError) as info:
        TaskEnvironment(name="r", plugin_config=config, reusable=policy)
    assert info.value.field == field and text in str(info.value)


def test_override_takes_reusable_and_checks_the_operators_config():
    from airflow_provider_flyte.operators.base import FlyteOperator

    env = TaskEnvironment(name="d", plugin_config=Dask())
    op = FlyteOperator(task_id="t", python_callable=lambda: 1, env=env, reusable=ReusePolicy(replicas=1))
    assert op.env.reusable == ReusePolicy(replicas=1)
    off = FlyteOperator(task_id="u", python_callable=lambda: 1, env=op.env, reusable="off")
    assert off.env.reusable is None
    warm = TaskEnvironment(name="w", reusable=ReusePolicy(replicas=1))
    with pytest.raises(FlyteConfigError, match=r"FlyteOperator.plugin_config: Cannot set plugin_config"):
        FlyteOperator(task_id="v", python_callable=lambda: 1, env=warm, plugin_config=Elastic(nnodes=1, nproc_per_node=1))


def test_spec_carries_the_policy_and_the_warm_placement_is_chosen():
    from airflow_provider_flyte.core.spec import TaskSpec
    from airflow_provider_flyte.hooks.base import FlyteEngineHook

    spec = TaskSpec.from_json(TaskSpec(reusable=ReusePolicy(replicas=1).to_dict()).to_json())
    assert spec.reusable == ReusePolicy(replicas=1).to_dict()
    assert FlyteEngineHook.choose_placement(None, spec) == "warm"
    assert FlyteEngineHook.choose_placement(None, spec.with_changes(conn_id="c")) == "attach"
    assert FlyteEngineHook.choose_placement(None, spec.with_changes(reusable=None)) == "local"
