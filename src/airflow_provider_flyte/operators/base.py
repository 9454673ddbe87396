"""``FlyteOperator``: run a Python callable under a plugin's lifecycle. Engine operators subclass it.

The operator is thin: it renders and validates the plugin config, builds the task spec and
hands both to the runner (:mod:`airflow_provider_flyte.runtime.runner`), which picks the hook and
placement and runs ``pre`` → the callable → ``post``. It then pushes the result and links to XCom.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import determine_kwargs

from airflow_provider_flyte.core import field_checks, settings
from airflow_provider_flyte.core.masking import register_all, register_sensitive
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.environment import TaskEnvironment, validate_plugin_config
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.links.base import LINKS_XCOM_KEY
from airflow_provider_flyte.plugins.base import PluginConfig, copy_config, is_template
from airflow_provider_flyte.reuse import check_reuse
from airflow_provider_flyte.runtime.runner import TaskRunner

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
        field_checks.check_op_args(f"{self.error_name()}.op_args", op_args)
        field_checks.check_op_kwargs(f"{self.error_name()}.op_kwargs", op_kwargs)
        # Flyte's task parameters (resources=Resources(...), env_vars, timeout, short_name, secrets ...)
        # become Airflow's or the environment's before BaseOperator sees them.
        kwargs, env = flyte_to_airflow(kwargs, env, where=self.error_name(), operator_class=type(self))
        if env is not None and isinstance(env, TaskEnvironment) and env.queue and "queue" not in kwargs:
            kwargs["queue"] = env.queue
        super().__init__(**kwargs)
        field_checks.check_optional_bool(f"{self.error_name()}.deferrable", deferrable)
        field_checks.check_seconds(f"{self.error_name()}.startup_timeout", startup_timeout)
        field_checks.check_seconds(f"{self.error_name()}.keep_failed_s", keep_failed_s, allow_zero=True)
        self.deferrable = deferrable
        self.startup_timeout = startup_timeout
        self.keep_failed_s = keep_failed_s
        if not callable(python_callable):
            raise FlyteConfigError(
                f"{self.error_name()}.python_callable", python_callable, "not callable",
                "pass a function",
            )
        field_checks.check_task_function(f"{self.error_name()}.python_callable", python_callable)
        if env is not None and not isinstance(env, TaskEnvironment):
            raise FlyteConfigError(
                f"{self.error_name()}.env", env, "not a TaskEnvironment", 'use TaskEnvironment(name="...")'
            )
        self.python_callable = python_callable
        self.op_args = list(op_args or [])
        self.op_kwargs = dict(op_kwargs or {})
        self.env = env
        self.conn_id = conn_id if conn_id is not None else (env.conn_id if env else None)
        if self.conn_id is not None and (not isinstance(self.conn_id, str) or not self.conn_id.strip()):
            raise FlyteConfigError(f"{self.error_name()}.conn_id", self.conn_id, "not a connection id",
                                   'pass the connection id as a non-empty string, e.g. conn_id="my_cluster"')
        check_conn_id_not_templated(f"{self.error_name()}.conn_id", self.conn_id)
        if plugin_config is None and env is not None:
            plugin_config = env.plugin_config
        self._check_config(plugin_config)
        if env is not None and env.env_vars:
            check_templates(ENV_VARS_FIELD, env.env_vars)
            self._check_declared_params(ENV_VARS_FIELD, env.env_vars)
        self.plugin_config = plugin_config
        if env is not None and env.description and not self.doc_md:
            self.doc_md = env.description
        self._runner: TaskRunner | None = None
        #: the URLs this try recorded for its extra links (read by the link classes at the end of the task)
        self.flyte_links: dict[str, str] = {}

    #: How errors name this operator (the class name when unset; ``flyte_task`` for the decorator's).
    error_label: ClassVar[str | None] = None

    @classmethod
    def error_name(cls) -> str:
        return cls.error_label or cls.__name__

    def _check_config(self, config: Any) -> None:
        field = f"{self.error_name()}.plugin_config"
        if config is None:
            if self.plugin_type is not None:
                raise FlyteConfigError(
                    field, None, "this operator needs a plugin config",
                    f"pass plugin_config={self.plugin_type.__name__}(...) or env=TaskEnvironment(plugin_config=...)",
                )
            return
        entry = validate_plugin_config(config, field=field)
        env = getattr(self, "env", None)
        if entry is not None and env is not None:
            check_reuse(env.reusable, config, supports_reuse=entry.supports_reuse, field=field)
        check_templates(field, config)
        self._check_declared_params(field, config)
        if self.plugin_type is not None and not is_template(config) and type(config) is not self.plugin_type:
            raise FlyteConfigError(
                field, type(config).__name__,
                f"{type(self).__name__} runs {self.plugin_type.__name__} configs",
                f"pass a {self.plugin_type.__name__}(...), or use the operator for "
                f"{type(config).__name__} (or @flyte_task, which picks the engine from the config)",
            )

    def _check_declared_params(self, field: str, config: Any) -> None:
        """At DAG parse: a ``{{ params.x }}`` in the config needs ``x`` declared (only declared Params render)."""
        dag = getattr(self, "dag", None) if getattr(self, "has_dag", lambda: False)() else None
        if dag is None:
            return  # not in a DAG yet: checked when the task renders
        declared = {*(getattr(dag, "params", None) or {}), *(getattr(self, "params", None) or {})}
        names = sorted({a or b for t in _string_templates(config) for a, b in _PARAM_REF.findall(t)} - declared)
        if names:
            raise FlyteConfigError(
                field, names, f"{_a_template_of(field)} uses a Param the DAG does not declare",
                "declare it, e.g. @dag(params={'n': Param(2, type='integer')}); plugin configs see only declared "
                "Params, never extra keys of a trigger's conf",
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
        """Render the plugin config and ``env_vars`` against declared Params only, then the other fields as usual.

        Whatever a ``{{ var.* }}`` / ``{{ conn.* }}`` template renders to is registered with the masker
        before Airflow stores the rendered fields or logs anything.
        """
        if jinja_env is None:
            jinja_env = self.get_template_env()
        # Render a private copy: configs are often shared by several tasks (env.plugin_config).
        original = self.plugin_config
        self.plugin_config = copy_config(original)
        restricted = _declared_params_only(context, self)
        with _undeclared_params_named(f"{self.error_name()}.plugin_config", original, restricted):
            self._do_render_template_fields(self, ("plugin_config",), restricted, jinja_env, set())
        # Before Airflow stores the rendered fields: a secret a template produced is masked there too.
        register_all(list(_rendered_secrets(original, self.plugin_config)))
        register_sensitive(self.plugin_config)
        self._render_env_vars(restricted, jinja_env)
        others = tuple(f for f in self.template_fields if f != "plugin_config")
        self._do_render_template_fields(self, others, context, jinja_env, set())

    def _render_env_vars(self, context: Any, jinja_env: Any) -> None:
        """``TaskEnvironment.env_vars`` templates, rendered by the plugin config's rules (this task's copy)."""
        env = self.env
        if env is None or not _string_templates(env.env_vars or {}):
            return
        with _undeclared_params_named(ENV_VARS_FIELD, env.env_vars, context):
            rendered = {name: str(self.render_template(value, context, jinja_env))
                        for name, value in (env.env_vars or {}).items()}
        register_all(list(_rendered_secrets(env.env_vars, rendered)))
        register_sensitive(rendered)
        self.env = env.clone_with(env_vars=rendered)

    def execute(self, context: Context) -> Any:
        config = self.resolved_config()
        kwargs = determine_kwargs(self.python_callable, self.op_args, {**context, **self.op_kwargs})
        self._runner = TaskRunner(self.task_spec(context, config), config, self.python_callable, logger=self.log)
        return self._runner.run(self.op_args, kwargs, airflow_context=context,
                                on_ready=lambda hook: self._push_links(context, hook.links))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after a deferred remote run (Kubernetes): read its outcome, clean up, return the result."""
        from airflow_provider_flyte.remote.watch import complete as complete_deferred

        ti = context["ti"]
        recorded = ti.xcom_pull(task_ids=ti.task_id, key=LINKS_XCOM_KEY, map_indexes=ti.map_index)
        self.flyte_links = dict(recorded) if isinstance(recorded, dict) else {}
        return complete_deferred(event, logger=self.log)

    def task_spec(self, context: Context, config: PluginConfig | None) -> TaskSpec:
        """The run's :class:`TaskSpec`: identity and code location from ``context``, the rest from ``env``."""
        check_nodes(config, self.conn_id)
        spec = build_spec(TaskInfo.from_context(context, include=tuple(self.env.include) if self.env else ()),
                          config, self.env, self.conn_id)
        return spec.with_changes(options=self.placement_options())

    def placement_options(self) -> dict[str, Any]:
        """How a remote placement runs this task (Kubernetes: deferral, startup timeout, deadline)."""
        import time

        options: dict[str, Any] = {
            "deferrable": self.deferrable if self.deferrable is not None
            else settings.flag("kubernetes_deferrable"),
            "startup_timeout": self.startup_timeout if self.startup_timeout is not None
            else settings.number("kubernetes_startup_timeout"),
            "keep_failed_s": self.keep_failed_s if self.keep_failed_s is not None
            else settings.number("kubernetes_keep_failed_s"),
            "namespace": settings.text("kubernetes_namespace"),
        }
        if self.execution_timeout is not None:
            options["deadline"] = time.time() + self.execution_timeout.total_seconds()
        return options

    def _push_links(self, context: Context, links: Mapping[str, str]) -> None:
        from airflow_provider_flyte.links.base import xcom_key

        for key, url in links.items():
            self.log.info("%s: %s", key, url)
            context["ti"].xcom_push(key=xcom_key(key), value=url)
        self.flyte_links.update(links)
        # all of them in one key, always written: a task resumed after deferral reads them back
        context["ti"].xcom_push(key=LINKS_XCOM_KEY, value=dict(self.flyte_links))

    def resolved_config(self) -> PluginConfig | None:
        """The rendered plugin config, converted to its declared types and validated."""
        config = self.plugin_config
        if config is None:
            return None
        if is_template(config):
            raise FlyteConfigError(
                f"{self.error_name()}.plugin_config", config, "the template did not render to a plugin config",
                "make the upstream task return a plugin config object, or template its fields instead",
            )
        self._check_config(config)
        resolved = config.validated()
        register_sensitive(resolved)  # an upstream XCom may have produced it: mask its secrets in this process
        return resolved

    def on_kill(self) -> None:
        """Tear down the engine when Airflow stops the task (UI, timeout, SIGTERM)."""
        if self._runner is not None:
            self._runner.kill()


def build_spec(task: TaskInfo, config: PluginConfig | None, env: TaskEnvironment | None,
               conn_id: str | None) -> TaskSpec:
    """The plain-data spec the runner and hooks work from (the DAG author's objects stay here)."""
    from airflow_provider_flyte.core.engines import find

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
        secrets=tuple(secret.to_ref() for secret in env.secrets_list) if env else (),
        pod_template=_pod_template_json(env.pod_template) if env else None,
        service_account=env.service_account if env else None,
        interruptible=bool(env.interruptible) if env else False,
        reusable=env.reusable.to_dict() if env is not None and env.reusable is not None else None,
    )


def check_nodes(config: PluginConfig | None, conn_id: str | None) -> None:
    """A multi-node Elastic job needs a cluster: on the worker (no ``conn_id``) it would wait forever."""
    max_nodes = getattr(config, "max_nodes", 1) if config is not None else 1
    if conn_id is None and isinstance(max_nodes, int) and max_nodes > 1:
        raise FlyteConfigError(
            "Elastic.nnodes", getattr(config, "nnodes", max_nodes),
            f"{max_nodes} nodes need a cluster, and this task has no conn_id, so it would run on the Airflow "
            "worker, which is one node (its rendezvous would wait for nodes that never come)",
            "use nnodes=1 with nproc_per_node=N processes on the worker, or set conn_id to a Kubernetes "
            "connection (TaskEnvironment(conn_id=...)) to run the nodes as a PyTorchJob (docs/kubernetes.md)",
        )


def _pod_template_json(template: Any) -> dict[str, Any] | None:
    """A pod template in the spec's JSON form: ``kubernetes.client`` objects become Kubernetes dicts."""
    if template is None or isinstance(template, dict):
        return template
    from airflow_provider_flyte.manifests.base import as_dict

    return as_dict(template, "TaskEnvironment.pod_template")


# -- Flyte's task parameters -> Airflow's -------------------------------------------------------------

#: Flyte's ``@env.task(...)`` / ``task.override(...)`` parameters this provider maps (docs/porting-from-flyte.md).
FLYTE_TASK_PARAMS = ("short_name", "resources", "env_vars", "timeout", "retries", "plugin_config", "reusable",
                     "secrets", "pod_template", "cache", "interruptible", "queue")
#: Flyte parameters with no Airflow meaning, and why.
FLYTE_UNSUPPORTED = {
    "max_inline_io_bytes": "XCom's own size limits apply",
    "links": "use the operator's extra links",
    "report": "Flyte reports have no Airflow counterpart",
    "docs": "use doc_md=",
    "triggers": "schedule the DAG instead",
    "entrypoint": "every Airflow task is shown in the DAG",
    "produces_artifacts": "Flyte artifacts have no Airflow counterpart; use Assets (outlets=)",
    "task_resolver": "Airflow loads tasks from the DAG file",
    "name": "Name cannot be overridden (use task_id= or short_name=)",
    "image": "Image cannot be overridden (set it on the TaskEnvironment)",
    "interface": "Interface cannot be overridden",
}
_ENV_PARAMS = ("env_vars", "secrets", "pod_template", "reusable", "interruptible")
_TASK_ID_RE = re.compile(r"^[\w.-]+$")


def accepted_params(operator_class: type) -> set[str]:
    """Every keyword the operator takes: its own, its bases' and ``BaseOperator``'s."""
    import inspect

    names: set[str] = set()
    for klass in operator_class.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters.values()
        except (TypeError, ValueError):
            continue
        names.update(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
                     and p.name != "self")
    return names | {"dag", "task_group", "default_args", "params", "on_failure_fail_dagrun", "multiple_outputs"}


def flyte_to_airflow(kwargs: Mapping[str, Any], env: Any, *, where: str, operator_class: type,
                     check_unknown: bool = True) -> tuple[dict[str, Any], Any]:
    """Map Flyte's task parameters onto Airflow's; returns ``(operator kwargs, environment)``.

    ``resources=Resources(...)`` (Flyte's) goes to the environment; a dict stays Airflow's
    ``BaseOperator.resources``. ``env_vars``, ``secrets``, ``pod_template``, ``reusable`` and
    ``interruptible`` change a clone of the environment (Flyte's ``override`` replaces them);
    ``timeout`` becomes ``execution_timeout``; ``short_name`` the task id (when it is a valid id and no
    ``task_id`` is given) and the display name; ``cache`` is checked (only ``"disable"``); ``retries``
    and ``queue`` are Airflow's own names. Unknown names raise :class:`FlyteConfigError` listing the
    accepted ones.
    """
    from datetime import timedelta

    from airflow_provider_flyte.environment import check_cache
    from airflow_provider_flyte.resources import Resources

    out = dict(kwargs)
    changes: dict[str, Any] = {}
    if isinstance(out.get("resources"), Resources):
        changes["resources"] = out.pop("resources")
    for key in _ENV_PARAMS:
        if key in out:
            value = out.pop(key)
            if value is not None:
                changes[key] = value
    if "cache" in out:
        check_cache(out.pop("cache"), field=f"{where}.cache")
    if "timeout" in out:
        timeout = out.pop("timeout")
        if "execution_timeout" in out and timeout:
            raise FlyteConfigError(f"{where}.timeout", timeout, "timeout and execution_timeout both given",
                                   "pass one of them (Flyte's timeout becomes Airflow's execution_timeout)")
        if timeout in (None, 0) or timeout == timedelta(0):
            pass
        elif isinstance(timeout, timedelta):
            out["execution_timeout"] = timeout
        elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and timeout > 0:
            out["execution_timeout"] = timedelta(seconds=timeout)
        else:
            raise FlyteConfigError(f"{where}.timeout", timeout, "not a timeout Airflow can enforce",
                                   "pass seconds (int) or a timedelta; Flyte's Timeout(max_queued_time=...) "
                                   "has no Airflow counterpart")
    if "retries" in out:  # an int, or Flyte's RetryStrategy(count=...)
        out["retries"] = field_checks.retry_count(f"{where}.retries", out["retries"])
    if "resources" in out:
        check_airflow_resources(f"{where}.resources", out["resources"])
    if "short_name" in out:
        short = out.pop("short_name")
        if short is not None:
            if not isinstance(short, str) or not short:
                raise FlyteConfigError(f"{where}.short_name", short, "not a name", 'pass a string, e.g. "train"')
            out.setdefault("task_display_name", short)
            if "task_id" not in out and _TASK_ID_RE.match(short):
                out["task_id"] = short
    if check_unknown:
        accepted = accepted_params(operator_class)
        for key in list(out):
            if key in accepted:
                continue
            if key in FLYTE_UNSUPPORTED:
                raise FlyteConfigError(f"{where}.{key}", out[key], "a Flyte parameter with no Airflow meaning",
                                       f"remove it ({FLYTE_UNSUPPORTED[key]})")
            raise FlyteConfigError(
                f"{where}.{key}", out[key], "not a Flyte or Airflow task parameter",
                f"use one of Flyte's {', '.join(FLYTE_TASK_PARAMS)} or an Airflow BaseOperator argument "
                "(task_id, retries, execution_timeout, pool, queue, ...)",
            )
    if changes:
        try:
            env = _changed_env(env, changes, where=where, name=str(out.get("task_id") or "task"))
        except FlyteConfigError as exc:
            raise _as_task_parameter(exc, where, changes) from None
    return out, env


#: The keys of Airflow's own ``BaseOperator.resources`` dict.
_AIRFLOW_RESOURCE_KEYS = ("cpus", "ram", "disk", "gpus")


def check_airflow_resources(field: str, value: Any) -> None:
    """``resources`` that is not Flyte's ``Resources``: Airflow's dict, else a clear error naming Flyte's form."""
    if value is None or (isinstance(value, dict) and set(value) <= set(_AIRFLOW_RESOURCE_KEYS)):
        return
    raise FlyteConfigError(
        field, value,
        "not Flyte's Resources, and not Airflow's BaseOperator.resources (a dict of "
        f"{', '.join(_AIRFLOW_RESOURCE_KEYS)})",
        'use Resources(cpu=2, memory="4Gi") (from airflow_provider_flyte import Resources) to size the task\'s '
        "engine and pods",
    )


def _as_task_parameter(exc: FlyteConfigError, where: str, changes: Mapping[str, Any]) -> FlyteConfigError:
    """``TaskEnvironment.env_vars: ...`` -> ``flyte_task.env_vars: ...``: name the argument the author wrote."""
    key = exc.field.partition(".")[2].split("[", 1)[0]
    if not exc.field.startswith("TaskEnvironment.") or key not in changes:
        return exc
    return FlyteConfigError(f"{where}.{exc.field.partition('.')[2]}", exc.value, exc.problem, exc.fix)


def _changed_env(env: Any, changes: dict[str, Any], *, where: str, name: str) -> TaskEnvironment:
    if env is None:
        slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "task"
        return TaskEnvironment(name=slug, **changes)
    if not isinstance(env, TaskEnvironment):
        raise FlyteConfigError(f"{where}.env", env, "not a TaskEnvironment", 'use TaskEnvironment(name="...")')
    reusable = changes.get("reusable", env.reusable)
    if reusable not in (None, "off"):
        for key in ("resources", "env_vars", "secrets"):
            if key in changes:
                raise FlyteConfigError(
                    f"{where}.{key}", changes[key], f"Cannot override {key} when reusable is set.",
                    "disable reusability in the same call (reusable='off') to override it",
                )
    return env.clone_with(**changes)


ENV_VARS_FIELD = "TaskEnvironment.env_vars"
#: ``dag_run.conf``: a trigger's free-form conf, which the trigger form does not validate.
_RUN_CONF = re.compile(r"\bdag_run\b[^}]*\bconf\b")
#: ``conf.x`` / ``conf[...]`` on its own: Airflow's configuration (it holds the metadata DB's URL, keys ...).
_AIRFLOW_CONF = re.compile(r"(?<![.\w])conf\s*[.\[]")
#: ``var.value.x`` / ``var.json.x`` / ``conn.x...``: a Variable or a Connection, whose rendering is secret.
_SECRET_SOURCE = re.compile(r"(?<![.\w])(?:var|conn)\s*\.")


def check_templates(field: str, value: Any) -> None:
    """Templates in a plugin config or ``env_vars`` may read declared Params, Variables and Connections only."""
    for template in _string_templates(value):
        if _RUN_CONF.search(template):
            raise FlyteConfigError(
                field, template, f"{_templates_of(field)} may not read dag_run.conf",
                "declare a Param (e.g. airflow_provider_flyte.params.spark_executors()) and use "
                "{{ params.<name> }}, so the trigger form validates the value",
            )
        if _AIRFLOW_CONF.search(template):
            raise FlyteConfigError(
                field, template, f"{_templates_of(field)} may not read Airflow's configuration (conf)",
                "put the value in a Variable and use {{ var.value.<name> }} (masked in logs), or declare a Param "
                "and use {{ params.<name> }}",
            )


def _templates_of(field: str) -> str:
    return "env_vars templates" if field == ENV_VARS_FIELD else "plugin config templates"


def _a_template_of(field: str) -> str:
    return "an env_vars template" if field == ENV_VARS_FIELD else "a plugin config template"


def check_conn_id_not_templated(field: str, conn_id: str | None) -> None:
    """``conn_id`` picks where the task runs when the DAG is parsed: a template there would be a literal id."""
    if conn_id is not None and is_template(conn_id):
        raise FlyteConfigError(
            field, conn_id, "conn_id is not templated: it is read as a connection id when the DAG is parsed",
            'write the connection id itself, e.g. conn_id="my_cluster"; to choose a cluster per run, make one task '
            "per connection and pick one with a @task.branch that reads the Param",
        )


def _rendered_secrets(original: Any, rendered: Any) -> Iterator[Any]:
    """What each ``{{ var.* }}`` / ``{{ conn.* }}`` template of ``original`` rendered to in ``rendered``."""
    if isinstance(original, str):
        if is_template(original) and _SECRET_SOURCE.search(original):
            yield rendered
    elif isinstance(original, PluginConfig):
        for name in original.template_fields:
            yield from _rendered_secrets(getattr(original, name), getattr(rendered, name, None))
    elif isinstance(original, dict) and isinstance(rendered, dict):
        for key, item in original.items():
            yield from _rendered_secrets(item, rendered.get(key))
    elif isinstance(original, (list, tuple)) and isinstance(rendered, (list, tuple)):
        for item, done in zip(original, rendered, strict=False):
            yield from _rendered_secrets(item, done)


@contextlib.contextmanager
def _undeclared_params_named(field: str, value: Any, context: Any) -> Iterator[None]:
    """Jinja's ``UndefinedError`` while rendering ``value`` -> the error naming the undeclared Param."""
    try:
        yield
    except Exception as exc:
        if type(exc).__name__ != "UndefinedError":  # jinja2's; only that one has a known cause here
            raise
        raise undeclared_params_error(field, value, context["params"], exc) from None


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


#: ``params.x`` / ``params["x"]`` in a template; ``params.get(...)`` (a method call) is not a reference.
_PARAM_REF = re.compile(r"\bparams\s*(?:\.\s*(\w+)\b(?!\s*\()|\[\s*['\"]([^'\"]+)['\"]\s*\])")


def undeclared_params_error(field: str, config: Any, declared: Mapping[str, Any], exc: Exception) -> FlyteConfigError:
    """A plugin config template that names a Param the DAG does not declare (jinja's ``UndefinedError``)."""
    names = sorted({a or b for t in _string_templates(config) for a, b in _PARAM_REF.findall(t)} - set(declared))
    value = names if names else str(exc)
    return FlyteConfigError(
        field, value, f"{_a_template_of(field)} uses a Param the DAG does not declare ({exc})",
        "declare it, e.g. @dag(params={'n': Param(2, type='integer')}); plugin configs see only declared "
        "Params, never extra keys of a trigger's conf",
    )


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
