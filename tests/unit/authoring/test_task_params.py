"""Flyte's task parameters -> Airflow's operator arguments or the TaskEnvironment (no engine, no DAG)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_flyte import Resources, TaskEnvironment
from airflow_provider_flyte.authoring.task_params import (
    FLYTE_TASK_PARAMS,
    accepted_params,
    check_airflow_resources,
    flyte_to_airflow,
)
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.operators.base import FlyteOperator


def _map(kwargs, env=None, **options):
    return flyte_to_airflow(kwargs, env, where="flyte_task", operator_class=FlyteOperator, **options)


def test_timeout_becomes_execution_timeout_and_zero_means_none():
    out, env = _map({"timeout": 90})
    assert out == {"execution_timeout": timedelta(seconds=90)} and env is None
    assert _map({"timeout": timedelta(minutes=2)})[0] == {"execution_timeout": timedelta(minutes=2)}
    assert _map({"timeout": 0})[0] == {}


def test_timeout_with_execution_timeout_or_of_a_wrong_kind_is_refused():
    with pytest.raises(FlyteConfigError, match="timeout and execution_timeout both given"):
        _map({"timeout": 5, "execution_timeout": timedelta(seconds=5)})
    with pytest.raises(FlyteConfigError, match="not a timeout Airflow can enforce"):
        _map({"timeout": "5m"})
    with pytest.raises(FlyteConfigError, match="not a timeout Airflow can enforce"):
        _map({"timeout": True})


def test_short_name_sets_task_id_and_display_name_unless_a_task_id_is_given():
    assert _map({"short_name": "train"})[0] == {"task_display_name": "train", "task_id": "train"}
    assert _map({"short_name": "train it", "task_id": "t"})[0] == {"task_display_name": "train it", "task_id": "t"}
    assert _map({"short_name": "train it"})[0] == {"task_display_name": "train it"}  # not a valid id


def test_flyte_resources_and_env_params_go_to_a_new_environment_named_after_the_task():
    out, env = _map({"resources": Resources(cpu="2"), "env_vars": {"A": "1"}, "task_id": "My Task-1"})
    assert out == {"task_id": "My Task-1"}
    assert isinstance(env, TaskEnvironment)
    assert env.name == "my_task_1"
    assert env.env_vars == {"A": "1"}
    assert env.resources == Resources(cpu="2")


def test_changes_clone_the_given_environment_and_leave_it_unchanged():
    base = TaskEnvironment(name="base", env_vars={"A": "1"})
    _, env = _map({"env_vars": {"B": "2"}, "interruptible": True}, base)
    assert env is not base and env.name == "base"
    assert env.env_vars == {"B": "2"} and env.interruptible is True
    assert base.env_vars == {"A": "1"} and base.interruptible is False


def test_an_environment_error_names_the_task_parameter_the_author_wrote():
    with pytest.raises(FlyteConfigError) as caught:
        _map({"env_vars": ["A=1"]}, TaskEnvironment(name="base"))
    assert caught.value.field == "flyte_task.env_vars"


def test_retries_accepts_flyte_retry_strategy_and_airflow_resources_stay_airflows():
    class RetryStrategy:
        count = 3

    out, env = _map({"retries": RetryStrategy(), "resources": {"cpus": 1}})
    assert out == {"retries": 3, "resources": {"cpus": 1}} and env is None
    check_airflow_resources("f", None)
    with pytest.raises(FlyteConfigError, match="not Flyte's Resources"):
        check_airflow_resources("f", {"cpu": 1})


def test_unknown_and_unsupported_parameters_are_refused_with_a_reason():
    with pytest.raises(FlyteConfigError, match=r"no Airflow meaning.*use doc_md="):
        _map({"docs": "x"})
    with pytest.raises(FlyteConfigError, match="not a Flyte or Airflow task parameter") as caught:
        _map({"retires": 2})
    assert caught.value.field == "flyte_task.retires"
    assert _map({"retires": 2}, check_unknown=False)[0] == {"retires": 2}


def test_cache_only_disable_and_accepted_names_include_the_operators_and_airflows():
    assert _map({"cache": "disable"})[0] == {}
    with pytest.raises(FlyteConfigError, match="no task-result cache"):
        _map({"cache": "auto"})
    names = accepted_params(FlyteOperator)
    assert {"plugin_config", "conn_id", "task_id", "retries", "params", "dag"} <= names
    assert "self" not in names
    assert "queue" in FLYTE_TASK_PARAMS


def test_reusable_environments_cannot_override_resources():
    from airflow_provider_flyte import ReusePolicy
    from airflow_provider_flyte.plugins.spark import Spark

    env = TaskEnvironment(name="w", plugin_config=Spark(), reusable=ReusePolicy(replicas=1))
    with pytest.raises(FlyteConfigError, match="Cannot override env_vars when reusable is set"):
        _map({"env_vars": {"A": "1"}}, env)
    _, changed = _map({"env_vars": {"A": "1"}, "reusable": "off"}, env)
    assert changed.reusable is None and changed.env_vars == {"A": "1"}
