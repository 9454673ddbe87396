"""A task called outside a DAG, as Flyte unit tests do (issue 27): refused at once, naming ``f.function(...)``.

On Flyte ``asyncio.run(f(3))`` runs the function; here the call built an Airflow task with no DAG and
returned an ``XComArg`` (then "a coroutine was expected"). Inside a DAG and inside a running task the call
keeps its meaning (tests/engines/test_porting*.py, tests/engines/test_nested*.py).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pendulum
import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError

BAD_DAGS = Path(__file__).parents[1] / "support" / "bad_dags"
env = TaskEnvironment(name="porting")


@env.task
async def add_one(x: int) -> int:
    return x + 1


@env.task
def double(x: int, *, times: int = 2) -> int:
    return x * times


def test_asyncio_run_of_a_task_names_the_plain_function() -> None:
    with pytest.raises(FlyteConfigError) as err:
        asyncio.run(add_one(3))
    assert str(err.value).startswith("add_one: a task called outside a DAG and outside a running task")
    assert "(got add_one(3))" in str(err.value)
    assert "call asyncio.run(add_one.function(3))" in err.value.fix
    assert asyncio.run(add_one.function(3)) == 4  # the way the message names


def test_a_sync_task_names_the_call_as_written() -> None:
    with pytest.raises(FlyteConfigError, match=re.escape("call double.function(3, times=3);")):
        double(3, times=3)
    assert double.function(3, times=3) == 9


def test_inside_a_dag_or_given_dag_the_call_still_builds_the_task() -> None:
    from airflow.sdk import DAG

    with DAG("built", schedule=None, start_date=pendulum.datetime(2025, 1, 1)) as dag:
        inside = double(1)
    given = double.override(dag=dag, task_id="given")(2)
    assert inside.operator.dag is dag and given.operator.dag is dag
    assert sorted(dag.task_ids) == ["double", "given"]


def test_a_call_after_the_dag_block_is_a_dag_import_error() -> None:
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(BAD_DAGS / "outside_dag_call.py"), bundle_path=BAD_DAGS)
    errors = list(bag.import_errors.values())
    assert len(errors) == 1, f"no DAG import error: parsed {sorted(bag.dags)}"
    assert re.search(r"add_one: a task called outside a DAG .*\(got add_one\(3\)\)\. Fix: to run the function "
                     r"itself \(as a Flyte unit test does\), call asyncio\.run\(add_one\.function\(3\)\)", errors[0])
