"""``@flyte_task`` / ``@task.flyte`` / ``@env.task``: the TaskFlow face of :class:`FlyteOperator`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, task_decorator_factory

from airflow_provider_flyte import registry
from airflow_provider_flyte.environment import TaskEnvironment
from airflow_provider_flyte.operators.base import FlyteOperator


class _FlyteDecoratedOperator(DecoratedOperator, FlyteOperator):  # type: ignore[misc]
    """The operator behind ``@flyte_task``: the engine is chosen by the plugin config's type."""

    custom_operator_name = "@task.flyte"
    #: The engine is chosen at run time, so every engine's link is offered; unused ones stay empty.
    operator_extra_links = registry.all_links()
    template_fields: Sequence[str] = FlyteOperator.template_fields
    template_fields_renderers = FlyteOperator.template_fields_renderers

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs_to_upstream = {"python_callable": python_callable, "op_args": op_args, "op_kwargs": op_kwargs}
        super().__init__(
            kwargs_to_upstream=kwargs_to_upstream,
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            **kwargs,
        )


def flyte_task(
    python_callable: Callable[..., Any] | TaskEnvironment | None = None,
    *,
    env: TaskEnvironment | None = None,
    multiple_outputs: bool | None = None,
    **kwargs: Any,
) -> TaskDecorator:
    """Turn a function into a task that runs under its environment's plugin.

    Spellings: ``@flyte_task(env)``, ``@flyte_task(env=env, retries=2)``,
    ``@flyte_task(plugin_config=Spark(...))``, ``@task.flyte(env=env)`` and ``@env.task``.
    Other keyword arguments go to the operator (``retries``, ``conn_id``, ``pool`` ...).
    """
    if isinstance(python_callable, TaskEnvironment):
        if env is not None:
            raise TypeError("flyte_task: pass the environment once, positionally or as env=")
        env, python_callable = python_callable, None
    if env is not None:
        kwargs["env"] = env
        if env.description and "doc_md" not in kwargs:
            kwargs["doc_md"] = env.description
    return task_decorator_factory(
        python_callable=python_callable,
        multiple_outputs=multiple_outputs,
        decorated_operator_class=_FlyteDecoratedOperator,
        **kwargs,
    )
