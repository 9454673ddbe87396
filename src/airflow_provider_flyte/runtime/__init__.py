"""The engine-independent runtime: the runner, the registry, the task spec, staging and process hygiene.

Nothing here imports an operator, a decorator or the DAG-author face (``TaskEnvironment``):
the same runner runs a task in an Airflow worker and inside a pod started by an engine's
Kubernetes operator (``python -m airflow_provider_flyte.runtime <spec-uri>``, see
:mod:`airflow_provider_flyte.runtime.entrypoint`). Submodules are imported on demand so
that importing the provider stays light.
"""
