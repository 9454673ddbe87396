"""The lifecycle contract every engine hook follows: ``pre`` -> run the function -> ``post``.

A hook owns one engine's lifecycle for one task: ``pre`` starts or connects the
engine and makes the task's code reachable by its workers, returning what the task
sees in ``ctx().data``; ``post`` tears down everything ``pre`` started. Cleanups are
pushed on an :class:`~contextlib.ExitStack` as resources come up, so a ``pre`` that
fails half-way, a failing task and a killed task all release exactly what exists.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from airflow.sdk import BaseHook

from airflow_provider_flyte.task_info import TaskInfo

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle import CodeBundle
    from airflow_provider_flyte.clusters import ClusterTarget
    from airflow_provider_flyte.environment import TaskEnvironment

C = TypeVar("C")

#: Environment form of ``[flyte] code_bundle``: set it to ``false`` when the code is on the cluster already.
CODE_BUNDLE_ENV = "AIRFLOW__FLYTE__CODE_BUNDLE"

log = logging.getLogger(__name__)


class FlyteEngineHook(BaseHook, Generic[C]):
    """Base class for engine hooks. Subclasses implement :meth:`pre` (and may override :meth:`run`).

    :param config: the resolved plugin config (``Spark``, ``RayJobConfig``...).
    :param task: the running task's identity and code location.
    :param env: the task's :class:`TaskEnvironment`, if any.
    :param conn_id: Airflow connection of an existing cluster; ``None`` runs locally.
    """

    conn_name_attr = "conn_id"
    config_type: ClassVar[type]
    engine_name: ClassVar[str] = "engine"
    #: Connection types this engine accepts -> the URL scheme used when ``host`` has none.
    accepted_conn_types: ClassVar[dict[str, str]] = {}
    #: URL scheme -> port used when neither ``host`` nor ``port`` gives one.
    default_ports: ClassVar[dict[str, int]] = {}

    def __init__(
        self,
        config: C,
        *,
        task: TaskInfo | None = None,
        env: TaskEnvironment | None = None,
        conn_id: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.task = task or TaskInfo()
        self.env = env
        self.conn_id = conn_id
        self._cleanup = contextlib.ExitStack()
        self._lock = threading.RLock()  # on_kill may re-enter post() from a signal handler
        self._cluster: ClusterTarget | None = None
        #: UI URLs found during ``pre`` (``{"spark_ui": "http://..."}``), shown as operator extra links.
        self.links: dict[str, str] = {}

    # -- where the engine runs ----------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        """True when the engine runs embedded on this worker (no connection named)."""
        return self.conn_id is None

    def cluster(self) -> ClusterTarget:
        """The existing cluster named by ``conn_id`` (read once per hook)."""
        if self.conn_id is None:
            raise RuntimeError("cluster() called for a local run")
        if self._cluster is None:
            from airflow_provider_flyte.clusters import resolve_cluster

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
        raise NotImplementedError

    def post(self) -> None:
        """Tear down what :meth:`pre` started. Idempotent and safe to call from ``on_kill``."""
        with self._lock:
            self._cleanup.close()

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

    @contextlib.contextmanager
    def session(self) -> Iterator[dict[str, Any]]:
        """``pre`` ... ``post`` around a block, with the environment's ``env_vars`` applied."""
        try:
            self._apply_env_vars()
            yield self.pre()
        finally:
            self.post()

    def _apply_env_vars(self) -> None:
        env_vars = dict(self.env.env_vars or {}) if self.env else {}
        if not env_vars:
            return
        previous = {key: os.environ.get(key) for key in env_vars}
        os.environ.update(env_vars)
        self.add_cleanup(restore_environ, previous)

    def scratch_dir(self, kind: str, *, parent: str | None = None, tag: str = "") -> str:
        """A private ``flyte-<kind>-*`` folder for this task, removed in :meth:`post`.

        Folders that killed tasks left behind are swept first (:mod:`airflow_provider_flyte.scratch`).
        """
        from airflow_provider_flyte.scratch import make_scratch_dir, remove_scratch_dir

        path = make_scratch_dir(kind, parent=parent, tag=tag)
        self.add_cleanup(remove_scratch_dir, path)
        return path

    def set_default_env(self, key: str, value: str) -> None:
        """Set ``os.environ[key]`` unless the user set it already; undone in :meth:`post`."""
        if key in os.environ:
            return
        os.environ[key] = value
        self.add_cleanup(restore_environ, {key: None})


def code_bundle_enabled() -> bool:
    """Whether cluster runs ship the code bundle: ``[flyte] code_bundle`` (default ``True``)."""
    try:
        from airflow.configuration import conf

        return conf.getboolean("flyte", "code_bundle", fallback=True)
    except ImportError:
        value = os.environ.get(CODE_BUNDLE_ENV, "true").strip().lower()
        return value not in ("false", "0", "no", "off")


def restore_environ(previous: Mapping[str, str | None]) -> None:
    """Put environment variables back as they were (``None``: unset)."""
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _logged(callback: Callable[..., Any]) -> Callable[..., Any]:
    """Run a teardown step; log instead of raising so the remaining steps still run."""

    def run(*args: Any, **kwargs: Any) -> None:
        try:
            callback(*args, **kwargs)
        except Exception:
            log.exception("Teardown step %s failed", getattr(callback, "__qualname__", callback))

    return run


def call_maybe_async(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Call ``fn``; run it to completion on an event loop when it is ``async def``."""
    result = fn(*args, **kwargs)
    if not inspect.isawaitable(result):
        return result
    coro = _as_coroutine(result)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Already inside a loop (an async operator path): run on a private loop in a thread.
    box: dict[str, Any] = {}
    context = contextvars.copy_context()

    def runner() -> None:
        try:
            box["result"] = context.run(asyncio.run, coro)  # type: ignore[arg-type]
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=runner, name="flyte-async-task")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")


async def _as_coroutine(awaitable: Awaitable[Any]) -> Any:
    return await awaitable
