"""``FlyteOperator``: run a Python callable under a plugin's lifecycle. Engine operators subclass it.

The operator is thin: it renders and validates the plugin config, builds the task spec (the DAG
author's side, Flyte's task parameters, template rules and spec building, is :mod:`airflow_provider_flyte.authoring`)
and hands both to the runner (:mod:`airflow_provider_flyte.runtime.runner`), which picks the hook and
placement and runs ``pre`` → the callable → ``post``. It then pushes the result and links to XCom.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import determine_kwargs

from airflow_provider_flyte.authoring import templates
from airflow_provider_flyte.authoring.checks import (
    check_callable,
    check_conn_id,
    check_plugin_type,
    validate_plugin_config,
)
from airflow_provider_flyte.authoring.spec_builder import build_spec, check_nodes, placement_options
from airflow_provider_flyte.authoring.task_identity import task_info_from_context
from airflow_provider_flyte.authoring.task_params import flyte_to_airflow
from airflow_provider_flyte.authoring.templates import (
    ENV_VARS_FIELD,
    declared_params_only,
    undeclared_params_named,
)
from airflow_provider_flyte.core import field_checks
from airflow_provider_flyte.core.masking import register_all, register_sensitive
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.environment import TaskEnvironment
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.links.base import LINKS_XCOM_KEY
from airflow_provider_flyte.plugins.base import PluginConfig, copy_config, is_template
from airflow_provider_flyte.reuse import check_reuse

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_flyte.runtime.runner import TaskRunner


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
    :param kueue_timeout: on Kubernetes with a Kueue queue, seconds the job may wait for admission before the
        task fails (default ``[flyte] kubernetes_kueue_timeout``: no limit).
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
        kueue_timeout: float | None = None,
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
        field_checks.check_seconds(f"{self.error_name()}.kueue_timeout", kueue_timeout)
        self.kueue_timeout = kueue_timeout
        self.deferrable = deferrable
        self.startup_timeout = startup_timeout
        self.keep_failed_s = keep_failed_s
        check_callable(f"{self.error_name()}.python_callable", python_callable)
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
        check_conn_id(f"{self.error_name()}.conn_id", self.conn_id)
        templates.check_conn_id_not_templated(f"{self.error_name()}.conn_id", self.conn_id)
        if plugin_config is None and env is not None:
            plugin_config = env.plugin_config
        self._check_config(plugin_config)
        if env is not None and env.env_vars:
            templates.check_templates(ENV_VARS_FIELD, env.env_vars)
            self._check_declared_params(ENV_VARS_FIELD, env.env_vars)
        self.plugin_config = plugin_config
        if env is not None and env.description and not self.doc_md:
            self.doc_md = env.description
        self._runner: TaskRunner | None = None
        #: the URLs this try recorded for its extra links (read by the link classes at the end of the task)
        self.flyte_links: dict[str, str] = {}
        #: the engine job's identity a deferred Kubernetes run reported (its OpenLineage facet, docs/lineage.md)
        self.flyte_job: dict[str, Any] = {}

    #: How errors name this operator (the class name when unset; ``flyte_task`` for the decorator's).
    error_label: ClassVar[str | None] = None

    @classmethod
    def error_name(cls) -> str:
        return cls.error_label or cls.__name__

    def _check_config(self, config: Any) -> None:
        field = f"{self.error_name()}.plugin_config"
        if config is None:
            check_plugin_type(field, None, self.plugin_type, type(self).__name__)
            return
        entry = validate_plugin_config(config, field=field)
        env = getattr(self, "env", None)
        if entry is not None and env is not None:
            check_reuse(env.reusable, config, supports_reuse=entry.supports_reuse, field=field)
            from airflow_provider_flyte.manifests.kueue import check_queueable

            if getattr(self, "conn_id", None) is not None:  # a queue matters only off the worker
                check_queueable(config, entry.manifest_path, env.kueue_queue, source="TaskEnvironment.kueue_queue")
        templates.check_templates(field, config)
        self._check_declared_params(field, config)
        check_plugin_type(field, config, self.plugin_type, type(self).__name__)

    def _check_declared_params(self, field: str, config: Any) -> None:
        """At DAG parse: a ``{{ params.x }}`` in the config needs ``x`` declared (only declared Params render)."""
        dag = getattr(self, "dag", None) if getattr(self, "has_dag", lambda: False)() else None
        if dag is None:
            return  # not in a DAG yet: checked when the task renders
        declared = {*(getattr(dag, "params", None) or {}), *(getattr(self, "params", None) or {})}
        templates.check_declared_params(field, config, declared)

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

        for ref in templates.nested_xcom_args(config):
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
        restricted = declared_params_only(context, self)
        with undeclared_params_named(f"{self.error_name()}.plugin_config", original, restricted):
            self._do_render_template_fields(self, ("plugin_config",), restricted, jinja_env, set())
        # Before Airflow stores the rendered fields: a secret a template produced is masked there too.
        register_all(list(templates.rendered_secrets(original, self.plugin_config)))
        register_sensitive(self.plugin_config)
        self._render_env_vars(restricted, jinja_env)
        others = tuple(f for f in self.template_fields if f != "plugin_config")
        self._do_render_template_fields(self, others, context, jinja_env, set())

    def _render_env_vars(self, context: Any, jinja_env: Any) -> None:
        """``TaskEnvironment.env_vars`` templates, rendered by the plugin config's rules (this task's copy)."""
        env = self.env
        if env is None or not templates.string_templates(env.env_vars or {}):
            return
        with undeclared_params_named(ENV_VARS_FIELD, env.env_vars, context):
            rendered = {name: str(self.render_template(value, context, jinja_env))
                        for name, value in (env.env_vars or {}).items()}
        register_all(list(templates.rendered_secrets(env.env_vars, rendered)))
        register_sensitive(rendered)
        self.env = env.clone_with(env_vars=rendered)

    def execute(self, context: Context) -> Any:
        # loaded when a task runs, not at DAG parse
        from airflow_provider_flyte.lineage import parent as parent_lineage
        from airflow_provider_flyte.runtime.runner import TaskRunner

        # OpenLineage (docs/lineage.md): the engine job is told its parent, this task run; the user's keys win
        config, lineage_env = parent_lineage.inject(self.resolved_config(), context)
        kwargs = determine_kwargs(self.python_callable, self.op_args, {**context, **self.op_kwargs})
        spec = self.task_spec(context, config)
        if lineage_env and not set(lineage_env) & set(spec.env_vars):  # a user's own parent: none of ours
            spec = spec.with_changes(env_vars={**spec.env_vars, **lineage_env})
        self._runner = TaskRunner(spec, config, self.python_callable, logger=self.log)
        return self._runner.run(self.op_args, kwargs, airflow_context=context,
                                on_ready=lambda hook: self._push_links(context, hook.links))

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after a deferred remote run (Kubernetes): read its outcome, clean up, return the result."""
        from airflow_provider_flyte.remote.watch import complete as complete_deferred

        ti = context["ti"]
        recorded = ti.xcom_pull(task_ids=ti.task_id, key=LINKS_XCOM_KEY, map_indexes=ti.map_index)
        self.flyte_links = dict(recorded) if isinstance(recorded, dict) else {}
        job = event.get("job") if isinstance(event, dict) else None
        if isinstance(job, dict):
            from airflow_provider_flyte.remote.jobs import JobRef

            ref = JobRef.from_dict(job)
            self.flyte_job = {"kind": ref.manifest.KIND, "namespace": ref.namespace, "name": ref.name, "uid": ref.uid}
        return complete_deferred(event, logger=self.log)

    # -- OpenLineage (docs/lineage.md): called by the openlineage provider's listener ----------
    def get_openlineage_facets_on_start(self) -> Any:
        return self._operator_lineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return self._operator_lineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> Any:
        return self._operator_lineage()

    def _operator_lineage(self) -> Any:
        from airflow_provider_flyte.core.engines import lookup
        from airflow_provider_flyte.lineage.facet import operator_lineage

        config = self.plugin_config if isinstance(self.plugin_config, PluginConfig) else None
        entry = lookup(type(config)) if config is not None else None
        hook = self._runner.hook if self._runner is not None else None
        if hook is not None:
            placement: str | None = hook.placement
        elif self.flyte_job:
            placement = "kubernetes"  # resumed after a deferred Kubernetes run
        elif self.conn_id is None:  # before the run: the worker's own placements need no connection lookup
            placement = "warm" if self.env is not None and self.env.reusable is not None else "local"
        else:
            placement = None  # attach or kubernetes: known once the run chose it
        plain = self._runner.spec.config if self._runner is not None else None
        job = {**self.flyte_job, **(hook.job_identity if hook is not None else {})}
        engine = (entry.label if entry is not None else None) or (type(config).__name__ if config else "python")
        return operator_lineage(engine=engine, placement=placement, config=plain, job=job)

    def task_spec(self, context: Context, config: PluginConfig | None) -> TaskSpec:
        """The run's :class:`TaskSpec`: identity and code location from ``context``, the rest from ``env``."""
        check_nodes(config, self.conn_id)
        spec = build_spec(task_info_from_context(context, include=tuple(self.env.include) if self.env else ()),
                          config, self.env, self.conn_id)
        return spec.with_changes(options=self.placement_options())

    def placement_options(self) -> dict[str, Any]:
        """How a remote placement runs this task (Kubernetes: deferral, startup timeout, deadline)."""
        return placement_options(deferrable=self.deferrable, startup_timeout=self.startup_timeout,
                                 keep_failed_s=self.keep_failed_s, execution_timeout=self.execution_timeout,
                                 kueue_queue=self.env.kueue_queue if self.env is not None else None,
                                 kueue_timeout=self.kueue_timeout)

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
