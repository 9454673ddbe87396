"""A task called at module level, after the DAG block (issue 27): was an XComArg of a task in no DAG, silently."""

from datetime import datetime

from airflow.sdk import DAG

from airflow_provider_flyte import TaskEnvironment

env = TaskEnvironment(name="outside")


@env.task
async def add_one(x: int) -> int:
    return x + 1


with DAG(dag_id="bad_outside_dag_call", schedule=None, start_date=datetime(2025, 1, 1)):
    add_one(1)

checked = add_one(3)  # outside the DAG block
