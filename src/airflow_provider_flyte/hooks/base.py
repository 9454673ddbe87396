"""The lifecycle contract every engine hook follows: ``pre`` -> run the function -> ``post``.

A hook owns one engine's lifecycle for one task: ``pre`` starts or connects the
engine and makes the task's code reachable by its workers, returning what the task
sees in ``ctx().data``; ``post`` tears down everything ``pre`` started. Cleanups are
pushed on an :class:`~contextlib.ExitStack` as resources come up, so a ``pre`` that
fails half-way, a failing task and a killed task all release exactly what exists.

**Placements.** Where the engine runs is a strategy, one subclass of the engine's hook per
placement, each in its own module of the engine's package (``hooks/spark/local.py``,
``hooks/spark/attach.py``, ``hooks/spark/in_cluster.py``). The engine's entry in the engine table
(:mod:`airflow_provider_flyte.core.engines`) declares which placements it supports, and its
connection facts (``conn_type``, accepted types, default ports), which the hook class reads from it.
The runner picks the placement once (:meth:`FlyteEngineHook.choose_placement`) and builds that
subclass; constructing the engine's base class directly (``FlyteSparkHook(config, spec)``) picks it
the same way. :meth:`FlyteEngineHook.placement_class` finds a placement's module by name.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_flyte.bundle.calls import call_maybe_async
from airflow_provider_flyte.core import engines, settings
from airflow_provider_flyte.core.spec import ATTACH, KUBERNETES, LOCAL, WARM, TaskSpec
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.conn_kind import connection_kind, not_kubernetes_error
from airflow_provider_flyte.hygiene import environ, heap
from airflow_provider_flyte.hygiene.environ import restore as restore_environ

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle import CodeBundle
    from airflow_provider_flyte.hooks.clusters import ClusterTarget

__all__ = ["CODE_BUNDLE_ENV", "FlyteEngineHook", "call_maybe_async", "code_bundle_enabled", "restore_environ"]

C = TypeVar("C")

#: Environment form of ``[flyte] code_bundle``: set it to ``false`` when the code is on the cluster already.
CODE_BUNDLE_ENV = "AIRFLOW__FLYTE__CODE_BUNDLE"

log = logging.getLogger(__name__)


class FlyteEngineHook(BaseHook, Generic[C]):
    """Base class for engine hooks. Placement subclasses implement :meth:`pre` (and may override :meth:`run`).

    :param config: the resolved plugin config (``Spark``, ``RayJobConfig``...).
    :param spec: the task's :class:`~airflow_provider_flyte.core.spec.TaskSpec` (identity, code
        location, env vars, resources, connection, placement).
    :param python_callable: the task's function (its DAG module is pickled by value for workers).
    :param task: shortcut for ``spec=TaskSpec(task=...)``.
    :param conn_id: shortcut for ``spec=TaskSpec(conn_id=...)``; ``None`` runs locally.
    """

    conn_name_attr = "conn_id"
    config_type: ClassVar[type]
    engine_name: ClassVar[str] = "engine"
    #: The engine's title ("Flyte Spark"), from its table entry.
    hook_name: ClassVar[str]
    #: Connection types this engine accepts -> the URL scheme used when ``host`` has none.
    accepted_conn_types: ClassVar[dict[str, str]] = {}
    #: URL scheme -> port used when neither ``host`` nor ``port`` gives one.
    default_ports: ClassVar[dict[str, int]] = {}
    #: The placement a subclass implements (``None`` on the engine's base class).
    placement: ClassVar[str | None] = None
    #: ``on_kill`` during the function unwinds it before ``post`` (the engine's client cannot be
    #: torn down under one of its own blocked calls, which the signal handler runs inside).
    kill_unwinds_first: ClassVar[bool] = False
    #: The names :meth:`read_entry` set on this class (the others in its ``__dict__`` are its own).
    _facts_from_entry: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """An engine's base hook (one that sets ``config_type``) takes its facts from its table entry."""
        super().__init_subclass__(**kwargs)
        config_type = cls.__dict__.get("config_type")
        entry = engines.lookup(config_type) if isinstance(config_type, type) else None
        if entry is not None:
            cls.read_entry(entry)

    @classmethod
    def read_entry(cls, entry: engines.PluginEntry) -> None:
        """Take the engine's name and connection facts from ``entry``, except those the class sets itself.

        Called when the class is defined, or by :func:`~airflow_provider_flyte.core.engines.register`
        when the class existed before its entry.
        """
        facts: dict[str, Any] = {}
        if entry.label:
            facts.update(engine_name=entry.label, hook_name=entry.title)
        conn = entry.connection
        if conn is not None:
            facts.update(conn_type=conn.conn_type, default_conn_name=conn.default_conn_name,
                         accepted_conn_types=dict(conn.accepted_conn_types), default_ports=dict(conn.default_ports))
        taken = set(cls.__dict__.get("_facts_from_entry", ()))
        for name, value in facts.items():
            if name not in cls.__dict__ or name in taken:  # what the class sets itself wins
                setattr(cls, name, value)
                taken.add(name)
        cls._facts_from_entry = frozenset(taken)

    def __new__(cls, config: Any = None, spec: TaskSpec | None = None, **kwargs: Any) -> Any:
        if cls.placement is None and "config_type" in cls.__dict__:
            spec = _spec_of(spec, kwargs)
            cls = cls.placement_class(cls.choose_placement(config, spec))
        return super().__new__(cls)

    def __init__(
        self,
        config: C,
        spec: TaskSpec | None = None,
        *,
        python_callable: Callable[..., Any] | None = None,
        task: TaskInfo | None = None,
        conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.spec = _spec_of(spec, {"task": task, "conn_id": conn_id})
        self.task = self.spec.task
        self.conn_id = self.spec.conn_id
        self.python_callable = python_callable
        self._cleanup = contextlib.ExitStack()
        self._pending_cleanups = 0
        self._heap_frozen = False  # session() froze the heap after pre; post thaws it
        self._lock = threading.RLock()  # on_kill may re-enter post() from a signal handler
        self._cluster: ClusterTarget | None = None
        #: UI URLs found during ``pre`` (``{"spark_ui": "http://..."}``), shown as operator extra links.
        self.links: dict[str, str] = {}
        #: The engine's own job, found during ``pre``/``run`` (the operator's OpenLineage facet, docs/lineage.md).
        self.job_identity: dict[str, str] = {}

    # -- where the engine runs ----------------------------------------------------------------
    @classmethod
    def choose_placement(cls, config: Any, spec: TaskSpec) -> str:
        """The placement for this task: the spec's own, else ``attach`` with a connection, else ``warm``
        with a ``ReusePolicy`` (a warm server on this machine), else ``local``."""
        if spec.placement:
            return spec.placement
        if spec.conn_id:
            found = connection_kind(spec.conn_id)
            if found.is_kubernetes:
                return KUBERNETES
            supported = cls.placements() if hasattr(cls, "config_type") else []
            if supported and ATTACH not in supported:  # the attach placement reports a missing connection itself
                raise not_kubernetes_error(cls.engine_name, spec.conn_id, found, cls.worker_fix(config),
                                           kubernetes=KUBERNETES in supported)
            return ATTACH
        return WARM if spec.reusable else LOCAL

    @classmethod
    def worker_fix(cls, config: Any) -> str:
        """How to run ``config`` on the Airflow worker instead, for an error about its ``conn_id``."""
        return "leave conn_id unset to run it on the Airflow worker"

    @classmethod
    def placement_class(cls, placement: str) -> type[FlyteEngineHook[Any]]:
        """The engine's hook subclass for ``placement``, from the module of that name in the engine's package."""
        base = cls if cls.placement is None else _engine_base(cls)
        package = base.__module__
        if not hasattr(importlib.import_module(package), "__path__"):
            return base  # a hook defined in a plain module handles every placement itself
        try:
            module = importlib.import_module(f"{package}.{placement}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package}.{placement}":
                raise
            module = None
        found = [value for value in vars(module).values()
                 if isinstance(value, type) and issubclass(value, base) and value.placement == placement] if module else []
        if found:
            return found[0]
        if module is not None and placement in base.placements():
            raise TypeError(f"{module.__name__} defines no {base.__name__} subclass with placement={placement!r}")
        if placement == ATTACH:
            raise FlyteConfigError(
                "conn_id", placement, f"{base.engine_name} does not run on an existing cluster",
                "set conn_id to a Kubernetes connection to run it on Kubernetes, or leave it unset to run it on "
                "the Airflow worker",
            )
        raise FlyteConfigError(
            "placement", placement, f"{base.engine_name} has no {placement!r} placement",
            f"use one of {', '.join(base.placements())}",
        )

    @classmethod
    def placements(cls) -> list[str]:
        """The placements this engine supports, as its entry in the engine table declares them."""
        base = cls if cls.placement is None else _engine_base(cls)
        entry = engines.lookup(base.config_type)
        return sorted(entry.placements) if entry is not None else []

    @property
    def is_local(self) -> bool:
        """True when the engine runs embedded on this worker."""
        return self.placement == LOCAL

    def cluster(self) -> ClusterTarget:
        """The existing cluster named by ``conn_id`` (read once per hook)."""
        if self.conn_id is None:
            raise RuntimeError("cluster() called for a local run")
        if self._cluster is None:
            from airflow_provider_flyte.hooks.clusters import resolve_cluster

            self._cluster = resolve_cluster(
                self.conn_id, accepted_types=self.accepted_conn_types, default_ports=self.default_ports
            )
        return self._cluster

    def code_bundle(self, fmt: str = "zip") -> CodeBundle | None:
        """The task's code as a bundle for remote workers; ``None`` when there is no project root.

        Built from ``env.include`` or the DAG folder, cached per process (unchanged trees are not
        rebuilt). A missing root (code baked into the image) is not an error.
        """
        if not code_bundle_enabled():
            self.log.info("Code bundle off (%s=false): workers import only what their own environment has",
                          CODE_BUNDLE_ENV)
            return None
        root = self.task.project_root
        if root is None or not root.is_dir():
            self.log.info("No project root to bundle; workers import only what their own environment has")
            return None
        from airflow_provider_flyte.bundle import build_bundle

        bundle = build_bundle(root, fmt=fmt)
        self.log.info("Code bundle %s: %d files, %d bytes from %s", bundle.digest[:12], bundle.file_count,
                      bundle.size, root)
        return bundle

    # -- the contract -------------------------------------------------------------------------
    def pre(self) -> dict[str, Any]:
        """Start or connect the engine; return what the task sees in ``ctx().data``."""
        raise NotImplementedError(f"{type(self).__name__} implements no pre()")

    def post(self) -> None:
        """Tear down what :meth:`pre` started. Idempotent and safe to call from ``on_kill``."""
        with self._lock:
            started = time.monotonic()
            if self._heap_frozen:  # first: teardown may rely on collecting what pre made
                self._heap_frozen = False
                heap.thaw()
            pending, self._pending_cleanups = self._pending_cleanups, 0
            self._cleanup.close()
            if pending:
                self.log.info("%s torn down (%s placement) in %.1f s",
                              self.engine_name, self.placement, time.monotonic() - started)

    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        """Call the user's function with the engine at hand (in-process by default)."""
        return call_maybe_async(fn, args, kwargs)

    def interrupt(self) -> None:
        """Stop the work the task is blocked on, from another thread (``execution_timeout`` fired).

        Only engines whose client swallows exceptions raised while it waits need this (py4j turns
        Airflow's ``AirflowTaskTimeout`` into a ``Py4JError`` and keeps waiting on the JVM); the
        default does nothing. ``post`` still tears everything down afterwards.
        """

    def add_cleanup(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Register a teardown step; steps run in reverse order in :meth:`post`."""
        self._cleanup.callback(_logged(callback), *args, **kwargs)
        self._pending_cleanups += 1

    @contextlib.contextmanager
    def session(self) -> Iterator[dict[str, Any]]:
        """``pre`` ... ``post`` around a block, with the environment's ``env_vars`` applied."""
        try:
            self._apply_env_vars()
            # The engine's imports and start without collections over the task's heap (hygiene/heap.py).
            with heap.collection_paused():
                self._heap_frozen = True
                data = self.pre()
            yield data
        except Exception as exc:
            self._keep_error_text(exc)
            raise
        finally:
            self.post()

    def capture_error(self, exc: BaseException) -> None:
        """Make the engine's part of ``exc`` (and its chain) readable after :meth:`post`.

        Called with the task's exception while the engine is still up, before :meth:`post` tears it
        down. Errors whose ``str()`` asks the engine for their text (PySpark's JVM exceptions) keep
        the text read now (:func:`~airflow_provider_flyte.core.error_text.keep_message`), so the
        task log and the runner's translation quote it. The default does nothing.
        """

    def _keep_error_text(self, exc: Exception) -> None:
        try:
            self.capture_error(exc)
        except Exception:  # never hide the task's own error behind this one
            log.warning("Could not read the %s error's text before teardown", self.engine_name, exc_info=True)

    def _apply_env_vars(self) -> None:
        if self.spec.env_vars:
            self.add_cleanup(environ.set_vars(self.spec.env_vars))

    def scratch_dir(self, kind: str, *, parent: str | None = None, tag: str = "") -> str:
        """A private ``flyte-<kind>-*`` folder for this task, removed in :meth:`post`.

        Folders that killed tasks left behind are swept first (:mod:`airflow_provider_flyte.hygiene.scratch`).
        """
        from airflow_provider_flyte.hygiene.scratch import make_scratch_dir, remove_scratch_dir

        path = make_scratch_dir(kind, parent=parent, tag=tag)
        self.add_cleanup(remove_scratch_dir, path)
        return path

    def set_default_env(self, key: str, value: str) -> None:
        """Set ``os.environ[key]`` unless the user set it already; undone in :meth:`post`."""
        undo = environ.set_default(key, value)
        if undo is not None:
            self.add_cleanup(undo)

    def prepend_env(self, key: str, entry: str) -> None:
        """Put ``entry`` first on the path list ``os.environ[key]``; undone in :meth:`post`."""
        self.add_cleanup(environ.prepend(key, entry))

    def pickle_by_value(self, cloudpickle_module: Any) -> None:
        """Let ``cloudpickle_module`` pickle the task's DAG module by value until :meth:`post`."""
        self.add_cleanup(_register_by_value(self.python_callable, cloudpickle_module))


def code_bundle_enabled() -> bool:
    """Whether cluster runs ship the code bundle: ``[flyte] code_bundle`` (default ``True``)."""
    return settings.flag("code_bundle")


def _logged(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Run a teardown step; log instead of raising so the remaining steps still run."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception:
            log.exception("Teardown step %s failed", getattr(callback, "__qualname__", callback))

    return run


def _spec_of(spec: TaskSpec | None, shortcuts: Mapping[str, Any]) -> TaskSpec:
    task, conn_id = shortcuts.get("task"), shortcuts.get("conn_id")
    if spec is None:
        return TaskSpec(task=task or TaskInfo(), conn_id=conn_id)
    if not isinstance(spec, TaskSpec):
        raise TypeError(f"spec must be a TaskSpec, not {type(spec).__name__}")
    changes: dict[str, Any] = {}
    if task is not None:
        changes["task"] = task
    if conn_id is not None:
        changes["conn_id"] = conn_id
    return spec.with_changes(**changes) if changes else spec


def _engine_base(cls: type) -> type[FlyteEngineHook[Any]]:
    """The engine's base hook class above a placement subclass."""
    for klass in cls.__mro__:
        if isinstance(klass, type) and issubclass(klass, FlyteEngineHook) and "config_type" in klass.__dict__:
            return klass
    raise TypeError(f"{cls.__name__} is not an engine hook")


def _register_by_value(fn: Callable[..., Any] | None, cloudpickle_module: Any) -> Callable[[], None]:
    from airflow_provider_flyte.bundle.user_code import register_by_value

    return register_by_value(fn, cloudpickle_module)
