"""``FlyteOperator``: run a Python callable under a plugin's lifecycle. Engine operators subclass it.

The operator is thin. It picks the hook registered for the plugin config's type,
renders and validates the config, and runs the callable inside the hook's
``pre``/``post`` session with ``ctx()`` set. Everything engine-specific is in the hook.
"""

from __future__ import annotations

import contextlib
import json
import re
import signal
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import determine_kwargs

from airflow_provider_flyte import registry
from airflow_provider_flyte.context import TaskContext, task_context
from airflow_provider_flyte.environment import TaskEnvironment, validate_plugin_config
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.base import FlyteEngineHook, call_maybe_async
from airflow_provider_flyte.plugins.base import PluginConfig, copy_config, is_template
from airflow_provider_flyte.task_info import TaskInfo

if TYPE_CHECKING:
    from airflow.sdk import Context


class FlyteOperator(BaseOperator):
    """Run ``python_callable`` with the engine that ``plugin_config`` selects.

    :param python_callable: the function to run.
    :param op_args: positional arguments for the function (templated).
    :param op_kwargs: keyword arguments for the function (templated).
    :param plugin_config: ``Spark``/``RayJobConfig``/``Dask``/``Elastic``; defaults to ``env.plugin_config``.
        Every field may be a Jinja template or an ``XComArg``.
    :param env: the :class:`TaskEnvironment` (resources, env_vars, conn_id, include).
    :param conn_id: connection of an existing cluster; defaults to ``env.conn_id``; ``None`` runs locally.
    """

    template_fields: Sequence[str] = ("plugin_config", "op_args", "op_kwargs")
    template_fields_renderers = {"op_args": "py", "op_kwargs": "py"}
    shallow_copy_attrs: Sequence[str] = ("python_callable",)
    ui_color = "#b4a7f0"

    #: Engine operators accept only this config type (``None``: any registered type).
    plugin_type: ClassVar[type | None] = None

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        plugin_config: Any = None,
        env: TaskEnvironment | None = None,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not callable(python_callable):
            raise FlyteConfigError(
                f"{type(self).__name__}.python_callable", python_callable, "not callable",
                "pass a function",
            )
        if env is not None and not isinstance(env, TaskEnvironment):
            raise FlyteConfigError(
                f"{type(self).__name__}.env", env, "not a TaskEnvironment", 'use TaskEnvironment(name="...")'
            )
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.env = env
        self.conn_id = conn_id if conn_id is not None else (env.conn_id if env else None)
        if plugin_config is None and env is not None:
            plugin_config = env.plugin_config
        self._check_config(plugin_config)
        self.plugin_config = plugin_config
        if env is not None and env.description and not self.doc_md:
            self.doc_md = env.description
        self._hook: FlyteEngineHook[Any] | None = None

    def _check_config(self, config: Any) -> None:
        field = f"{type(self).__name__}.plugin_config"
        if config is None:
            if self.plugin_type is not None:
                raise FlyteConfigError(
                    field, None, "this operator needs a plugin config",
                    f"pass plugin_config={self.plugin_type.__name__}(...) or env=TaskEnvironment(plugin_config=...)",
                )
            return
        validate_plugin_config(config, field=field)
        for template in _string_templates(config):
            if _CONF_ACCESS.search(template):
                raise FlyteConfigError(
                    field, template, "plugin config templates may not read dag_run.conf",
                    "declare a Param (e.g. airflow_provider_flyte.params.spark_executors()) and use "
                    "{{ params.<name> }}, so the trigger form validates the value",
                )
        if self.plugin_type is not None and not is_template(config) and type(config) is not self.plugin_type:
            raise FlyteConfigError(
                field, type(config).__name__,
                f"{type(self).__name__} runs {self.plugin_type.__name__} configs",
                f"pass a {self.plugin_type.__name__}(...), or use the operator for "
                f"{type(config).__name__} (or @flyte_task, which picks the engine from the config)",
            )

    # -- Airflow hooks ------------------------------------------------------------------------
    def _set_xcomargs_dependencies(self) -> None:
        """Also wire ``XComArg``s nested inside plugin configs as upstream dependencies.

        Airflow only looks into containers and operators, not into config objects.
        """
        super()._set_xcomargs_dependencies()  # type: ignore[misc]
        self._set_nested_config_dependencies(getattr(self, "plugin_config", None))

    def _set_xcomargs_dependency(self, field: str, newvalue: Any) -> None:
        super()._set_xcomargs_dependency(field, newvalue)  # type: ignore[misc]
        if field == "plugin_config":
            self._set_nested_config_dependencies(newvalue)

    def _set_nested_config_dependencies(self, config: Any) -> None:
        from airflow.sdk.definitions.xcom_arg import XComArg

        for ref in _nested_xcom_args(config):
            XComArg.apply_upstream_relationship(self, ref)

    def render_template_fields(self, context: Context, jinja_env: Any = None) -> None:
        """Render the plugin config against declared Params only, then the other fields as usual."""
        if jinja_env is None:
            jinja_env = self.get_template_env()
        # Render a private copy: configs are often shared by several tasks (env.plugin_config).
        self.plugin_config = copy_config(self.plugin_config)
        self._do_render_template_fields(self, ("plugin_config",), _declared_params_only(context, self), jinja_env, set())
        others = tuple(f for f in self.template_fields if f != "plugin_config")
        self._do_render_template_fields(self, others, context, jinja_env, set())

    def execute(self, context: Context) -> Any:
        config = self.resolved_config()
        kwargs = determine_kwargs(self.python_callable, self.op_args, {**context, **self.op_kwargs})
        info = TaskInfo.from_context(
            context, python_callable=self.python_callable, include=tuple(self.env.include) if self.env else ()
        )
        task_ctx = TaskContext(
            dag_id=info.dag_id, task_id=info.task_id, run_id=info.run_id, map_index=info.map_index,
            airflow_context=context,
        )
        if config is None:
            with task_context(task_ctx):
                return call_maybe_async(self.python_callable, self.op_args, kwargs)
        hook_cls = registry.find(type(config)).hook_class()
        self.log.info(
            "Running %s with %s %s (%s)", info.display_name, type(config).__name__,
            json.dumps(config.to_dict(), default=str, sort_keys=True),
            f"connection {self.conn_id!r}" if self.conn_id else "locally on this worker",
        )
        hook = hook_cls(config, task=info, env=self.env, conn_id=self.conn_id)
        self._hook = hook
        with _terminate_on_sigterm(), _interrupt_on_timeout(hook) as timeout_guard, hook.session() as data:
            task_ctx.data.update(data)
            self._push_links(context, hook)
            with task_context(task_ctx), timeout_guard.in_engine():
                return hook.run(self.python_callable, self.op_args, kwargs)

    def _push_links(self, context: Context, hook: FlyteEngineHook[Any]) -> None:
        from airflow_provider_flyte.links.base import xcom_key

        for key, url in hook.links.items():
            self.log.info("%s: %s", key, url)
            context["ti"].xcom_push(key=xcom_key(key), value=url)

    def resolved_config(self) -> PluginConfig | None:
        """The rendered plugin config, converted to its declared types and validated."""
        config = self.plugin_config
        if config is None:
            return None
        if is_template(config):
            raise FlyteConfigError(
                f"{type(self).__name__}.plugin_config", config, "the template did not render to a plugin config",
                "make the upstream task return a plugin config object, or template its fields instead",
            )
        self._check_config(config)
        return config.validated()

    def on_kill(self) -> None:
        """Tear down the engine when Airflow stops the task (UI, timeout, SIGTERM)."""
        if self._hook is not None:
            self.log.info("Task killed: tearing down %s", self._hook.engine_name)
            self._hook.post()


_CONF_ACCESS = re.compile(r"\bdag_run\b[^}]*\bconf\b|\bconf\s*\.|\bconf\s*\[|\bvar\.|\bconn\.")


def _string_templates(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if is_template(value) else []
    if isinstance(value, PluginConfig):
        return [t for name in value.template_fields for t in _string_templates(getattr(value, name))]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _string_templates(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _string_templates(item)]
    return []


def _declared_params_only(context: Context, task: BaseOperator) -> Any:
    """A copy of ``context`` whose ``params`` holds only Params the DAG or task declares.

    ``context["params"]`` also carries any extra key sent in a trigger's ``conf``; engine
    settings must never come from those.
    """
    declared: set[str] = set()
    for holder in (getattr(task, "dag", None), task):
        params = getattr(holder, "params", None)
        if params:
            declared.update(params.keys())
    restricted = dict(context)
    params = context.get("params") or {}
    restricted["params"] = {key: value for key, value in params.items() if key in declared}
    return restricted


def _nested_xcom_args(value: Any) -> list[Any]:
    found: list[Any] = []
    if is_template(value) and not isinstance(value, str):
        found.append(value)
    elif isinstance(value, PluginConfig):
        for name in value.template_fields:
            found += _nested_xcom_args(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            found += _nested_xcom_args(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            found += _nested_xcom_args(item)
    return found


class _terminate_on_sigterm:
    """Turn SIGTERM into ``SystemExit`` while the engine runs, unless someone handles it already.

    Airflow's task runner installs a handler that calls ``on_kill``; a bare process
    (``dag.test()``, a script) would die on SIGTERM without running ``post``. This makes
    ``finally`` blocks run so the engine is torn down either way.
    """

    def __enter__(self) -> None:
        self._previous: Any = None
        if threading.current_thread() is not threading.main_thread():
            return
        current = signal.getsignal(signal.SIGTERM)
        if current in (signal.SIG_DFL, None):
            self._previous = current
            signal.signal(signal.SIGTERM, _raise_system_exit)

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


#: Seconds after ``execution_timeout`` fired before a task still inside its engine is interrupted.
INTERRUPT_GRACE_S = 1.0


class _interrupt_on_timeout:
    """On Airflow's ``execution_timeout`` (SIGALRM), time out as Airflow does, then make sure it lands.

    Airflow's handler raises ``AirflowTaskTimeout`` where the main thread is blocked. Some engine
    clients swallow it there: py4j wraps it in a ``Py4JError`` and goes on waiting for the JVM;
    Ray's ``ray.get`` ignores any exception from a signal handler but ``KeyboardInterrupt``. If
    the task is still inside the engine :data:`INTERRUPT_GRACE_S` later, the hook's
    :meth:`~FlyteEngineHook.interrupt` stops it. The timeout is re-raised if another exception
    took its place, so Airflow still reports a timeout and calls ``on_kill``.
    """

    def __init__(self, hook: FlyteEngineHook[Any]) -> None:
        self._hook = hook
        self._previous: Any = None
        self._raised: BaseException | None = None
        self._lock = threading.Lock()
        self._in_engine = False
        self._sigint: Any = None

    def __enter__(self) -> _interrupt_on_timeout:
        if threading.current_thread() is threading.main_thread():
            current = signal.getsignal(signal.SIGALRM)
            if callable(current):
                self._previous = current
                signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    @contextlib.contextmanager
    def in_engine(self) -> Iterator[None]:
        """Mark the span in which :meth:`FlyteEngineHook.interrupt` may be called."""
        with self._lock:
            self._in_engine = True
        try:
            yield
        finally:
            with self._lock:  # an interrupt already delivered is raised here at the latest, before post
                self._in_engine = False

    def _on_alarm(self, signum: int, frame: Any) -> None:
        # Airflow's task process resets SIGINT to SIG_DFL; a Python handler is what lets
        # ``_thread.interrupt_main`` (Ray's interrupt) raise KeyboardInterrupt in this thread.
        if signal.getsignal(signal.SIGINT) in (signal.SIG_DFL, None):
            self._sigint = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, signal.default_int_handler)
        threading.Thread(target=self._interrupt_if_stuck, name="flyte-timeout-interrupt", daemon=True).start()
        try:
            self._previous(signum, frame)
        except BaseException as exc:
            self._raised = exc
            raise

    def _interrupt_if_stuck(self) -> None:
        time.sleep(INTERRUPT_GRACE_S)
        with self._lock:
            if self._in_engine:
                self._hook.log.warning("The timeout did not stop %s: interrupting it", self._hook.engine_name)
                self._hook.interrupt()

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGALRM, self._previous)
        if self._sigint is not None:
            signal.signal(signal.SIGINT, self._sigint)
        if self._raised is not None and exc is not None and exc is not self._raised:
            raise self._raised from exc


def _raise_system_exit(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
