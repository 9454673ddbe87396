"""``@flyte_task``'s spellings: what it takes positionally and by name, refused early with the fix."""

from __future__ import annotations

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.decorators.flyte import (
    FlyteTaskDecorator,
    check_positional,
    flyte_task,
    running_task,
)
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.spark import Spark


def _fn(x: int = 1) -> int:
    return x


def test_every_spelling_makes_a_flyte_task() -> None:
    env = TaskEnvironment(name="etl")
    for task in (flyte_task(_fn), flyte_task(env)(_fn), flyte_task(env=env, retries=2)(_fn),
                 flyte_task(plugin_config=Spark())(_fn)):
        assert isinstance(task, FlyteTaskDecorator)
        assert task.function is _fn
    assert flyte_task(env=env, retries=2)(_fn).kwargs["retries"] == 2
    assert flyte_task(env)(_fn).kwargs["env"] is env


def test_a_positional_plugin_config_is_refused_with_the_keyword_fix() -> None:
    with pytest.raises(FlyteConfigError) as err:
        flyte_task(Spark())
    assert err.value.field == "flyte_task"
    assert "plugin_config=Spark(...)" in err.value.fix


def test_the_environment_twice_is_a_type_error() -> None:
    env = TaskEnvironment(name="etl")
    with pytest.raises(TypeError, match="pass the environment once"):
        flyte_task(env, env=env)


@pytest.mark.parametrize("name", ["op_args", "op_kwargs"])
def test_function_arguments_belong_to_the_call(name) -> None:
    with pytest.raises(FlyteConfigError, match=rf"flyte_task.{name}: the decorator takes no function arguments"):
        flyte_task(**{name: [1]})


def test_env_must_be_a_task_environment() -> None:
    with pytest.raises(FlyteConfigError, match=r"flyte_task.env: not a TaskEnvironment"):
        flyte_task(env={"name": "etl"})


def test_check_positional_accepts_functions_and_none_only() -> None:
    check_positional("flyte_task", None)
    check_positional("flyte_task", _fn)
    with pytest.raises(FlyteConfigError, match="@env.task decorates a function"):
        check_positional("etl.task", 42)


def test_no_task_is_running_outside_a_task() -> None:
    assert running_task() is None
