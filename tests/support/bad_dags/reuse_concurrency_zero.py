"""A ReusePolicy with concurrency=0."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment

env = TaskEnvironment(name="bad", reusable=ReusePolicy(concurrency=0))
