"""ReusePolicy(replicas=10**6): a million warm servers on one machine."""

from airflow_provider_flyte import ReusePolicy, TaskEnvironment

env = TaskEnvironment(name="bad", reusable=ReusePolicy(replicas=10**6))
