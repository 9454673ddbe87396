"""Ray embedded on the worker: a private local instance per task (own temp dir, loopback, random ports)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

from airflow_provider_flyte.bundle.user_code import prepend_path
from airflow_provider_flyte.core.spec import LOCAL
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.ray import TRUE_WORDS, FlyteRayHook
from airflow_provider_flyte.hooks.ray.auth import ensure_auth_token, reload_auth, restore_auth
from airflow_provider_flyte.hooks.ray.driver import keep_sigterm_handler, loggable
from airflow_provider_flyte.hooks.ray.local_fit import unmet_requests
from airflow_provider_flyte.hygiene.engine_logs import quiet_engine_loggers
from airflow_provider_flyte.hygiene.environ import restore as restore_environ
from airflow_provider_flyte.hygiene.environ import snapshot as snapshot_environ
from airflow_provider_flyte.hygiene.processes import descendant_pids, descendants, mentioning, stop
from airflow_provider_flyte.hygiene.scratch import SCRATCH_ENV
from airflow_provider_flyte.plugins.rebuild import resources_of
from airflow_provider_flyte.resources import Resources

_EXIT_TIMEOUT_S = 15


class LocalRayHook(FlyteRayHook):
    """``ray.init(address="local")`` sized by the config's head and worker groups; reaped in post."""

    placement = LOCAL

    def start(self, ray: Any) -> None:
        temp_dir = self.scratch_dir("ray", parent=short_tmp())
        self.add_cleanup(restore_environ, snapshot_environ("PYTHONBREAKPOINT"))
        # Token auth is Ray's default for a local cluster; saying so explicitly (as Ray asks) keeps its
        # "Token authentication is enabled for this Ray cluster" warning out of every task log.
        # RAY_AUTH_MODE=disabled in the worker's environment is kept. Restored after ray.shutdown().
        self.add_cleanup(restore_auth, snapshot_environ("RAY_AUTH_MODE"))
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        reload_auth()  # Ray caches the mode per process
        # Registered before ray.init: a start that fails half-way is torn down as well.
        self.add_cleanup(_shutdown_and_reap, ray, temp_dir, descendant_pids())
        kwargs = self.local_init_kwargs(temp_dir)
        self.add_cleanup(_ray_logs_to_task_log())
        # Ray's INFO lines ("Started a local Ray instance.") out of the task log; the line below says more.
        self.add_cleanup(quiet_engine_loggers(("ray",)))
        requested = self.requested_cpus()
        ensure_auth_token()
        root = str(self.task.project_root) if self.task.project_root else None
        with raylet_environ(ray, root, temp_dir), random_local_ports(), keep_sigterm_handler():
            context = ray.init(**kwargs)
        if kwargs["include_dashboard"]:
            self._record_dashboard(context, None)
        for line in unmet_requests(self.requested_resources(), ray.cluster_resources()):
            self.log.warning("%s", line)
        self.log.info(
            "Started a local Ray instance for %s: %s CPUs (the config asks for %g), temp dir %s, runtime_env %s",
            self.task.display_name, kwargs["num_cpus"], requested, temp_dir, loggable(kwargs["runtime_env"]),
        )


    def requested_resources(self) -> list[tuple[str, Resources | None]]:
        """The memory and device requests the local instance stands in for: the environment's, each node's."""
        head = self.config.head_node_config
        sources: list[tuple[str, Resources | None]] = [("TaskEnvironment.resources", resources_of(self.spec))]
        if head is not None:
            sources.append(("RayJobConfig.head_node_config.requests", head.requests))
        sources.extend((f"RayJobConfig.worker_node_config[{i}].requests", group.requests)
                       for i, group in enumerate(self.config.worker_node_config))
        return sources


def _ray_logs_to_task_log() -> Any:
    """Route Ray's Python loggers into the task log at their own level; returns the undo.

    Ray gives its ``ray`` logger a handler on stderr, which Airflow logs as ERROR
    ("Started a local Ray instance." would be an error line of a successful task).
    """
    import logging

    logger = logging.getLogger("ray")
    saved = (list(logger.handlers), logger.propagate)
    logger.handlers[:] = [h for h in logger.handlers
                          if not isinstance(h, logging.StreamHandler) or isinstance(h, logging.FileHandler)]
    logger.propagate = True

    def undo() -> None:
        logger.handlers[:] = saved[0]
        logger.propagate = saved[1]

    return undo


def short_tmp() -> str:
    """``/tmp`` when usable: Ray's socket paths under the temp dir must stay short."""
    return "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else tempfile.gettempdir()


@contextlib.contextmanager
def raylet_environ(ray: Any, project_root: str | None, temp_dir: str) -> Iterator[None]:
    """The environment the Ray processes are started with (inherited by every Ray worker).

    Ray binds to 127.0.0.1 only when it takes this machine for a single-node setup
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); the metrics ports become random. The processes
    are tagged with the task's temp dir, so that the next task can stop those a SIGKILL left.
    """
    changes = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "AUTOSCALER_METRIC_PORT": "0", "DASHBOARD_METRIC_PORT": "0"}
    changes = {key: value for key, value in changes.items() if key not in os.environ}
    changes[SCRATCH_ENV] = temp_dir
    if project_root:
        changes["PYTHONPATH"] = prepend_path(os.environ.get("PYTHONPATH"), project_root)
    previous = snapshot_environ(*changes)
    constants = ray._private.ray_constants
    cluster_mode = constants.ENABLE_RAY_CLUSTER
    os.environ.update(changes)
    constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"].lower() in TRUE_WORDS
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = cluster_mode
        restore_environ(previous)


@contextlib.contextmanager
def random_local_ports() -> Iterator[None]:
    """Let the OS pick the dashboard agent's and the workers' ports (Ray's defaults are fixed)."""
    from ray._private import parameter

    original = parameter.RayParams

    class RayParams(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("dashboard_agent_listen_port", 0)
            kwargs.setdefault("min_worker_port", 0)
            kwargs.setdefault("max_worker_port", 0)
            super().__init__(*args, **kwargs)

    parameter.RayParams = RayParams  # type: ignore[misc]
    try:
        yield
    finally:
        parameter.RayParams = original  # type: ignore[misc]


def _ray_processes(temp_dir: str, before: frozenset[int] = frozenset()) -> list[Any]:
    """This process's descendants that belong to the instance in ``temp_dir``, with their children."""
    import psutil

    found: dict[int, Any] = {}
    for proc in descendants():
        try:
            cmdline = proc.cmdline()
            # Ray workers retitle themselves ("ray::IDLE"), losing the temp dir from argv; any
            # descendant that appeared after this task started Ray belongs to its instance.
            if proc.pid not in before or any(temp_dir in arg or arg.startswith("ray::") for arg in cmdline):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(found.values())


def _shutdown_and_reap(ray: Any, temp_dir: str, before: frozenset[int] = frozenset()) -> None:
    """``ray.shutdown()``, then make sure every process of the instance has exited.

    Processes are found again after the shutdown, machine-wide by the instance's unique temp
    dir: a worker can be spawned while Ray shuts down, and an orphan is no longer our child.
    """
    import psutil

    procs = _ray_processes(temp_dir, before)
    ray.shutdown()
    for _ in range(3):
        _, alive = psutil.wait_procs(procs, timeout=_EXIT_TIMEOUT_S)
        alive = stop(alive, grace_s=5, what="Ray process", children=False)
        if alive:
            raise FlyteEngineError(f"Ray processes did not exit: {[p.pid for p in alive]}")
        procs = _ray_processes(temp_dir, before) + mentioning(temp_dir)
        if not procs:
            return
    raise FlyteEngineError(f"Ray processes of {temp_dir} keep appearing: {[p.pid for p in procs]}")
