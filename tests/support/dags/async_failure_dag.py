"""A failing ``async def`` task (issue 27): its traceback is the user's own, not chained to "no running event loop"."""

import pendulum
from airflow.sdk import dag

import airflow_provider_flyte as flyte

env = flyte.TaskEnvironment(name="plain")


@env.task
async def boom() -> int:
    raise ValueError("the user's own error")


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def async_failure():
    boom()


async_failure()
