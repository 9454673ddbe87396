"""A ReusePolicy with idle_ttl under Flyte's 30 s minimum."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment

env = TaskEnvironment(name="bad", reusable=ReusePolicy(idle_ttl=5))
