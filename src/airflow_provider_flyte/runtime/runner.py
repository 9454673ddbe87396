"""The runner: one task's run sequence, the same in an Airflow worker and in a pod.

``spec + config`` → the registry's hook class → the placement it chooses → guards (SIGTERM,
``execution_timeout``) → ``pre`` → the function with ``ctx()`` set → ``post``. The operator
and the in-cluster entrypoint both call :class:`TaskRunner`; it imports neither.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.bundle.calls import call_maybe_async
from airflow_provider_flyte.context import TaskContext, task_context
from airflow_provider_flyte.core import engines as registry
from airflow_provider_flyte.core.masking import redacted, register_sensitive
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.exceptions import TaskKilledError
from airflow_provider_flyte.hygiene import environ
from airflow_provider_flyte.hygiene.processes import leftovers_stopped
from airflow_provider_flyte.runtime.diagnose import translate
from airflow_provider_flyte.runtime.guards import (
    KILL_UNWIND_GRACE_S,
    interrupt_on_timeout,
    terminate_on_sigterm,
)
from airflow_provider_flyte.secrets import exposed as exposed_secrets

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.base import FlyteEngineHook
    from airflow_provider_flyte.plugins.base import PluginConfig

log = logging.getLogger(__name__)


class TaskRunner:
    """Runs one task: ``TaskRunner(spec, config, fn).run(args, kwargs)``; :meth:`kill` tears it down.

    :param spec: the task spec (identity, code location, env vars, connection, placement).
    :param config: the resolved plugin config, or ``None`` to call the function plainly.
    :param fn: the user's function.
    :param logger: where the run is logged (the operator passes its task logger).
    """

    def __init__(self, spec: TaskSpec, config: PluginConfig | None, fn: Callable[..., Any], *,
                 logger: Any = None) -> None:
        self.spec = spec
        self.config = config
        self.fn = fn
        self.log = logger or log
        self.hook: FlyteEngineHook[Any] | None = None
        self._in_function = False  # the user's function is running (on the main thread)
        self._killed = False

    def make_hook(self) -> FlyteEngineHook[Any]:
        """The hook for this task: the engine's class for the config's type, at the placement it chooses."""
        assert self.config is not None
        base = registry.find(type(self.config)).hook_class()
        placement = base.choose_placement(self.config, self.spec)
        hook_cls = base.placement_class(placement)
        return hook_cls(self.config, self.spec, python_callable=self.fn)

    def run(self, args: Sequence[Any], kwargs: Mapping[str, Any], *, airflow_context: Any = None,
            on_ready: Callable[[FlyteEngineHook[Any]], None] | None = None) -> Any:
        """``pre`` → ``fn(*args, **kwargs)`` → ``post``; ``on_ready(hook)`` runs after ``pre`` (links)."""
        info = self.spec.task
        task_ctx = TaskContext(dag_id=info.dag_id, task_id=info.task_id, run_id=info.run_id,
                               map_index=info.map_index, airflow_context=airflow_context,
                               task=info, spec=self.spec, logger=self.log)  # issue 12: identity for ctx()
        # issue 12: secrets (references in the spec) are resolved, masked and exposed here, before the
        # engine starts, so its workers inherit them; undone when the run ends.
        # Sensitive config values and env vars are masked in every log line of the run (worker and pod).
        register_sensitive(self.spec.env_vars)
        register_sensitive(self.config)
        with leftovers_stopped(self.log), exposed_secrets(self.spec.secrets, logger=self.log):
            if self.config is None:
                with environ_vars(self.spec.env_vars), task_context(task_ctx):
                    return call_maybe_async(self.fn, args, kwargs)
            return self._run_engine(task_ctx, args, kwargs, on_ready)

    def _run_engine(self, task_ctx: TaskContext, args: Sequence[Any], kwargs: Mapping[str, Any],
                    on_ready: Callable[[FlyteEngineHook[Any]], None] | None) -> Any:
        assert self.config is not None
        info = self.spec.task
        hook = self.make_hook()
        self.hook = hook
        self.log.info(
            "Running %s with %s %s (%s)", info.display_name, type(self.config).__name__,
            json.dumps(redacted(self.config.to_dict()), default=str, sort_keys=True), describe_placement(hook),
        )
        task_ctx.placement = hook.placement
        started = time.monotonic()
        try:
            with terminate_on_sigterm(), interrupt_on_timeout(hook) as timeout_guard, hook.session() as data:
                self.log.info("%s ready in %.2fs (placement %s)", hook.engine_name, time.monotonic() - started,
                              hook.placement)
                task_ctx.data.update(data)
                if on_ready is not None:
                    on_ready(hook)
                with task_context(task_ctx), timeout_guard.in_engine(), self._function_running():
                    result = hook.run(self.fn, args, kwargs)
        except BaseException as exc:
            if self._killed:  # kill() unwound the function; post has run (session's finally)
                raise self._killed_error(hook) from exc
            if not isinstance(exc, Exception):
                raise
            # An engine error with a known user cause (memory, a port, Java) says so; the original is its cause.
            translated = translate(exc, hook.engine_name)
            if translated is None:
                raise
            raise translated from exc
        if self._killed:  # the function swallowed the interrupt; its engine was torn down all the same
            raise self._killed_error(hook)
        return result

    def _killed_error(self, hook: FlyteEngineHook[Any]) -> TaskKilledError:
        return TaskKilledError(f"{self.spec.task.display_name}: the task was killed (SIGTERM) while it ran; "
                               f"{hook.engine_name} was torn down")

    @contextlib.contextmanager
    def _function_running(self) -> Iterator[None]:
        self._in_function = threading.current_thread() is threading.main_thread()
        try:
            yield
        finally:
            self._in_function = False

    def kill(self) -> None:
        """Tear down whatever the run started (``on_kill``); safe to call at any time, more than once.

        Airflow calls it from its SIGTERM handler, on the main thread, wherever the function is
        blocked. For engines whose client cannot be torn down under its own blocked call
        (``kill_unwinds_first``), it raises ``KeyboardInterrupt`` there instead (the one exception
        ``ray.get`` lets through): the function unwinds and the session's ``finally`` runs ``post``.
        If the function has not unwound :data:`KILL_UNWIND_GRACE_S` later, ``post`` runs anyway.
        """
        hook = self.hook
        if hook is None:
            return
        self.log.info("Task killed: tearing down %s", hook.engine_name)
        if (hook.kill_unwinds_first and self._in_function and not self._killed
                and threading.current_thread() is threading.main_thread()):
            self._killed = True
            threading.Thread(target=self._post_unless_unwound, args=(hook,), name="flyte-kill-teardown",
                             daemon=True).start()
            raise KeyboardInterrupt(f"task killed: unwinding before {hook.engine_name} is torn down")
        hook.post()

    def _post_unless_unwound(self, hook: FlyteEngineHook[Any]) -> None:
        deadline = time.monotonic() + KILL_UNWIND_GRACE_S
        while self._in_function and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._in_function:
            self.log.warning("%s did not unwind %.0f s after the kill: tearing it down under it",
                             hook.engine_name, KILL_UNWIND_GRACE_S)
            hook.post()


@contextlib.contextmanager
def environ_vars(env_vars: Mapping[str, str]) -> Iterator[None]:
    """The environment's ``env_vars`` around a run without an engine (hooks apply them in ``session()``)."""
    if not env_vars:
        yield
        return
    undo = environ.set_vars(dict(env_vars))
    try:
        yield
    finally:
        undo()


def describe_placement(hook: FlyteEngineHook[Any]) -> str:
    if hook.placement == "local":
        return "locally on this worker"
    if hook.conn_id:
        return f"connection {hook.conn_id!r}"
    return f"placement {hook.placement}"
