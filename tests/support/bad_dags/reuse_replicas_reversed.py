"""A ReusePolicy whose (min, max) replicas are reversed."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment

env = TaskEnvironment(name="bad", reusable=ReusePolicy(replicas=(3, 1)))
