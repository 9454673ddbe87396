"""``FlyteOperator``: run a Python callable under a plugin's lifecycle. Engine operators subclass it.

The operator is thin: it renders and validates the plugin config, builds the task spec and
hands both to the runner (:mod:`airflow_provider_flyte.runtime.runner`), which picks the hook and
placement and runs ``pre`` → the callable → ``post``. It then pushes the result and links to XCom.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import determine_kwargs

from airflow_provider_flyte.environment import TaskEnvironment, validate_plugin_config
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig, copy_config, is_template
from airflow_provider_flyte.runtime.runner import TaskRunner
from airflow_provider_flyte.runtime.spec import TaskSpec
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
    :param conn_id: connection of an existing cluster, or of Kubernetes (an ephemeral cluster per task);
        defaults to ``env.conn_id``; ``None`` runs locally.
    :param deferrable: on Kubernetes, wait in the triggerer (default ``[flyte] kubernetes_deferrable``, True).
    :param startup_timeout: on Kubernetes, seconds the job may take to start running (default 300).
    :param keep_failed_s: on Kubernetes, keep a failed job this many seconds for debugging (default 0: delete).
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
        deferrable: bool | None = None,
        startup_timeout: float | None = None,
        keep_failed_s: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deferrable = deferrable
        self.startup_timeout = startup_timeout
        self.keep_failed_s = keep_failed_s
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
        self._runner: TaskRunner | None = None

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
        self._runner = TaskRunner(self.task_spec(context, config), config, self.python_callable, logger=self.log)
        return self._runner.run(self.op_args, kwargs, airflow_context=context,
                                on_ready=lambda hook: self._push_links(context, hook.links))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after a deferred remote run (Kubernetes): read its outcome, clean up, return the result."""
        from airflow_provider_flyte.runtime.remote import complete_deferred

        return complete_deferred(event, logger=self.log)

    def task_spec(self, context: Context, config: PluginConfig | None) -> TaskSpec:
        """The run's :class:`TaskSpec`: identity and code location from ``context``, the rest from ``env``."""
        spec = build_spec(TaskInfo.from_context(context, include=tuple(self.env.include) if self.env else ()),
                          config, self.env, self.conn_id)
        return spec.with_changes(options=self.placement_options())

    def placement_options(self) -> dict[str, Any]:
        """How a remote placement runs this task (Kubernetes: deferral, startup timeout, deadline)."""
        import time

        from airflow.configuration import conf

        options: dict[str, Any] = {
            "deferrable": self.deferrable if self.deferrable is not None
            else conf.getboolean("flyte", "kubernetes_deferrable", fallback=True),
            "startup_timeout": self.startup_timeout if self.startup_timeout is not None
            else conf.getfloat("flyte", "kubernetes_startup_timeout", fallback=300.0),
            "keep_failed_s": self.keep_failed_s if self.keep_failed_s is not None
            else conf.getfloat("flyte", "kubernetes_keep_failed_s", fallback=0.0),
            "namespace": conf.get("flyte", "kubernetes_namespace", fallback=None) or None,
        }
        if self.execution_timeout is not None:
            options["deadline"] = time.time() + self.execution_timeout.total_seconds()
        return options

    def _push_links(self, context: Context, links: Mapping[str, str]) -> None:
        from airflow_provider_flyte.links.base import xcom_key

        for key, url in links.items():
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
        if self._runner is not None:
            self._runner.kill()


def build_spec(task: TaskInfo, config: PluginConfig | None, env: TaskEnvironment | None,
               conn_id: str | None) -> TaskSpec:
    """The plain-data spec the runner and hooks work from (the DAG author's objects stay here)."""
    from airflow_provider_flyte.runtime.registry import find

    resources = env.resources if env else None
    return TaskSpec(
        task=task,
        config_type=find(type(config)).config_path if config is not None else None,
        config=config.to_dict() if config is not None else None,
        env_vars=dict(env.env_vars or {}) if env else {},
        resources=resources.to_dict() if resources is not None else None,
        include=tuple(env.include) if env else (),
        conn_id=conn_id,
        image=env.image if env else None,
        env_name=env.name if env else None,
    )


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
