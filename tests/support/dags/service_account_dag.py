"""Flyte's task-level ``service_account`` (issue 27): ``@env.task(service_account=...)`` and ``.override(...)``."""

import pendulum
from airflow.sdk import dag

import airflow_provider_flyte as flyte

env = flyte.TaskEnvironment(name="sa_env", service_account="env-sa")


@env.task(service_account="task-sa")
def with_account() -> str:
    return "ran"


@env.task
def overridden() -> str:
    return "ran"


@dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1), catchup=False)
def service_account():
    with_account()
    overridden.override(service_account="override-sa")()


service_account()
