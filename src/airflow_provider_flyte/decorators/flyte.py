"""``@flyte_task`` / ``@task.flyte`` / ``@env.task``: the TaskFlow face of :class:`FlyteOperator`.

Inside a DAG definition, calling a decorated task builds the Airflow task (an ``XComArg``), as
any TaskFlow task. Inside a *running* task, calling it (``inner(x)``, ``await inner(x)``,
``inner.override(plugin_config=...)(x)``) runs the inner task's plugin lifecycle inline, in the
current task process, and returns its value, as a Flyte sub-action: the engine is started, the
function runs with its own ``ctx()``, the engine is torn down, and the outer task goes on. Its log
lines are grouped (``::group::`` / ``::endgroup::``) in the outer task's log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from airflow.sdk.bases.decorator import DecoratedOperator, TaskDecorator, _TaskDecorator

from airflow_provider_flyte import registry
from airflow_provider_flyte.authoring.checks import validate_plugin_config
from airflow_provider_flyte.authoring.spec_builder import build_spec, check_nodes
from airflow_provider_flyte.authoring.task_params import flyte_to_airflow
from airflow_provider_flyte.context import TaskContext, ctx
from airflow_provider_flyte.core import field_checks
from airflow_provider_flyte.environment import TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.plugins.base import PluginConfig


class _FlyteDecoratedOperator(DecoratedOperator, FlyteOperator):  # type: ignore[misc]
    """The operator behind ``@flyte_task``: the engine is chosen by the plugin config's type."""

    custom_operator_name = "@task.flyte"
    error_label = "flyte_task"
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


class FlyteTaskDecorator(_TaskDecorator):  # type: ignore[type-arg]
    """A TaskFlow task that takes Flyte's parameters and runs inline when called from a running task."""

    def override(self, **kwargs: Any) -> FlyteTaskDecorator:
        """Flyte's ``task.override(...)`` (resources, env_vars, timeout, short_name, secrets, plugin_config,
        ...) next to Airflow's own arguments; returns the task for one call."""
        env = kwargs.pop("env", self.kwargs.get("env"))
        kwargs, env = flyte_to_airflow(kwargs, env, where=f"{self.function.__name__}.override()",
                                       operator_class=self.operator_class)
        if env is not None:
            kwargs["env"] = env
        return super().override(**kwargs)  # type: ignore[return-value]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        outer = running_task()
        if outer is None:
            if not _defining_a_dag(self.kwargs):
                raise outside_dag_error(self.function, args, kwargs)
            return super().__call__(*args, **kwargs)
        return self._call_inline(outer, args, kwargs)

    # -- nested call: a Flyte sub-action ------------------------------------------------------
    def _call_inline(self, outer: TaskContext, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        from airflow_provider_flyte.core.task_info import TaskInfo
        from airflow_provider_flyte.runtime.runner import TaskRunner

        options = self.kwargs
        env: TaskEnvironment | None = options.get("env")
        config = options.get("plugin_config")
        if config is None and env is not None:
            config = env.plugin_config
        name = str(options.get("task_id") or self.function.__name__)
        if config is not None:
            validate_plugin_config(config, field=f"{name}.plugin_config")
            config = config.validated()  # a template cannot render here: a clear error
        call_kwargs = {**dict(options.get("op_kwargs") or {}), **kwargs}
        conn_id = options.get("conn_id")
        if conn_id is None and env is not None:
            conn_id = env.conn_id
        outer_info = outer.task if isinstance(outer.task, TaskInfo) else TaskInfo(
            dag_id=outer.dag_id or "adhoc", task_id=outer.task_id or "task", run_id=outer.run_id,
            map_index=outer.map_index if outer.map_index is not None else -1)
        info = dataclasses.replace(outer_info, task_id=f"{outer_info.task_id}.{name}")
        check_nodes(config, conn_id)
        spec = build_spec(info, config, env, conn_id)
        log = outer.logger or logging.getLogger("airflow.task")
        runner = TaskRunner(spec, config, self.function, logger=log)

        def run() -> Any:
            log.info("::group::Flyte sub-task %s", info.display_name)
            try:
                return runner.run(args, call_kwargs, airflow_context=outer.airflow_context)
            finally:
                log.info("::endgroup::")

        if inspect.iscoroutinefunction(self.function) and _loop_running():
            async def sub_action() -> Any:
                return run()

            return sub_action()
        return run()


def running_task() -> TaskContext | None:
    """The running task's context when a task function is executing (not while a DAG is defined)."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    if DagContext.get_current() is not None:
        return None
    current = ctx()
    if current is not None:
        return current
    try:  # a plain Airflow @task calling a Flyte task
        from airflow.sdk import get_current_context

        context = get_current_context()
    except Exception:
        return None
    from airflow_provider_flyte.authoring.task_identity import task_info_from_context

    info = task_info_from_context(context)
    return TaskContext(dag_id=info.dag_id, task_id=info.task_id, run_id=info.run_id, map_index=info.map_index,
                       airflow_context=context, task=info)


class _ShownCall(str):
    """A call as written (``f(3)``), shown without quotes in the error's "(got ...)"."""

    def __repr__(self) -> str:
        return str(self)


def _defining_a_dag(options: Mapping[str, Any]) -> bool:
    """Whether a call builds an Airflow task: inside ``with DAG(...)`` / a ``@dag`` function, or given ``dag=``."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    return DagContext.get_current() is not None or options.get("dag") is not None


def outside_dag_error(function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> FlyteConfigError:
    """A task called with no DAG being defined and no task running (a Flyte unit test's ``f(3)``).

    Airflow would build a task with no DAG and hand back an ``XComArg`` (``asyncio.run`` of it then fails with
    "a coroutine was expected"); this names the plain function instead.
    """
    name = function.__name__
    shown = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    call = f"{name}({', '.join(shown)})"
    plain = f"{name}.function({', '.join(shown)})"
    if inspect.iscoroutinefunction(function):
        plain = f"asyncio.run({plain})"
    return FlyteConfigError(
        name, _ShownCall(call),
        "a task called outside a DAG and outside a running task: here a call builds an Airflow task (an "
        "XComArg), it does not run the function",
        f"to run the function itself (as a Flyte unit test does), call {plain}; to build the task, call "
        f"{name}(...) inside `with DAG(...)` or a @dag function (dag.test() runs it through Airflow)",
    )


def _loop_running() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


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
    Flyte's task parameters (``short_name``, ``timeout``, ``resources=Resources(...)``, ``env_vars``,
    ``secrets``, ``pod_template``, ``cache``, ``interruptible``, ``queue``, ``reusable``) are mapped to
    Airflow's; other keyword arguments go to the operator (``retries``, ``conn_id``, ``pool`` ...).
    """
    import attr

    if isinstance(python_callable, TaskEnvironment):
        if env is not None:
            raise TypeError("flyte_task: pass the environment once, positionally or as env=")
        env, python_callable = python_callable, None
    check_positional("flyte_task", python_callable)
    for name in ("op_args", "op_kwargs"):
        if name in kwargs:
            raise FlyteConfigError(f"flyte_task.{name}", kwargs[name], "the decorator takes no function arguments",
                                   "pass them when calling the task in the DAG: my_task(1, n=2)")
    if env is not None and not isinstance(env, TaskEnvironment):
        raise FlyteConfigError("flyte_task.env", env, "not a TaskEnvironment", 'use TaskEnvironment(name="...")')
    kwargs, env = flyte_to_airflow(kwargs, env, where="flyte_task", operator_class=_FlyteDecoratedOperator)
    if env is not None:
        kwargs["env"] = env
        if env.description and "doc_md" not in kwargs:
            kwargs["doc_md"] = env.description
    outputs: Any = attr.NOTHING if multiple_outputs is None else multiple_outputs

    def decorate(fn: Callable[..., Any]) -> FlyteTaskDecorator:
        check_positional("flyte_task", fn)
        field_checks.check_task_function("flyte_task.python_callable", fn)
        return FlyteTaskDecorator(function=fn, multiple_outputs=outputs, operator_class=_FlyteDecoratedOperator,
                                  kwargs=dict(kwargs))

    if python_callable is not None:
        return decorate(python_callable)  # type: ignore[return-value]
    return decorate  # type: ignore[return-value]


def check_positional(where: str, value: Any) -> None:
    """What ``@flyte_task(...)`` / ``@env.task(...)`` take positionally: a function (or, for ``flyte_task``, an env)."""
    if value is None or callable(value):
        return
    if isinstance(value, PluginConfig):
        raise FlyteConfigError(
            where, type(value).__name__, "a plugin config passed positionally: only a function or a TaskEnvironment "
            "goes there", f"pass it by name: @flyte_task(plugin_config={type(value).__name__}(...)), or put it in "
            "an environment: @flyte_task(TaskEnvironment(name=..., plugin_config=...))",
        )
    what = ("@env.task decorates a function" if where.endswith(".task")
            else "flyte_task takes a TaskEnvironment or a function positionally")
    raise FlyteConfigError(where, value, f"not a function: {what}",
                           "write the decorator above a def, and pass options by name, e.g. "
                           "@env.task(retries=2) or @flyte_task(env, retries=2)")
