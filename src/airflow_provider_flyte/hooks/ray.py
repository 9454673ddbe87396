"""Ray's lifecycle: start a private Ray instance in ``pre``; shut it down and reap its processes in ``post``.

Locally every task gets its own Ray instance: its own temp dir (a short path, as Ray's
socket paths are length-limited), random ports on 127.0.0.1 only, no dashboard, and as
many CPUs as the config's head and worker groups ask for (capped to this machine). Ray
workers inherit ``PYTHONPATH`` from the raylet, which is started with the DAG folder on
it, so remote functions can import the user's helper modules; functions from the DAG
file itself are pickled by value. Worker output reaches the task log (``log_to_driver``).
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.base import FlyteEngineHook
from airflow_provider_flyte.plugins.ray import RayJobConfig
from airflow_provider_flyte.resources import Resources
from airflow_provider_flyte.user_code import modules_to_pickle_by_value, prepend_path

_EXIT_TIMEOUT_S = 15
_TRUE = ("1", "true", "yes", "on")


class FlyteRayHook(FlyteEngineHook[RayJobConfig]):
    """Owns one task's Ray instance (or uses the one already initialized in this process).

    ``ray.init`` runs only when Ray is not initialized yet; Ray that this task did not
    start is left running. ``ctx().data`` is empty, as in flyteplugins: the task calls
    ``ray.remote`` / ``ray.get`` directly.
    """

    conn_type = "flyte_ray"
    default_conn_name = "flyte_ray_default"
    hook_name = "Flyte Ray"
    config_type = RayJobConfig
    engine_name = "Ray"

    # -- sizing -------------------------------------------------------------------------------
    def node_cpus(self) -> tuple[float, list[tuple[int, float]]]:
        """CPUs of the head, and ``(replicas, CPUs per worker)`` of each worker group.

        A node's CPUs come from ``ray_start_params["num-cpus"]``, else its requests, else its
        limits, else the environment's ``resources``, else 1.
        """
        default = _cpus(None, self.env.resources if self.env else None, None) or 1.0
        head = self.config.head_node_config
        head_cpus = (_cpus(head.ray_start_params, head.requests, head.limits) if head else None) or default
        groups = [
            (group.replicas, _cpus(group.ray_start_params, group.requests, group.limits) or default)
            for group in self.config.worker_node_config
        ]
        return head_cpus, groups

    def requested_cpus(self) -> float:
        """CPUs of the head plus ``replicas`` x CPUs per worker, as the cluster would have."""
        head, groups = self.node_cpus()
        return head + sum(replicas * cpus for replicas, cpus in groups)

    def local_num_cpus(self) -> int:
        """``num_cpus`` of the local instance: the requested CPUs, capped to this machine.

        The cap never goes below the largest single node, so a Ray task that fits one
        node of the configured cluster stays schedulable.
        """
        head, groups = self.node_cpus()
        largest = max([head] + [cpus for _, cpus in groups])
        cap = max(_machine_cpus(), math.ceil(largest))
        return max(1, min(math.ceil(self.requested_cpus()), cap))

    # -- what ray.init gets -------------------------------------------------------------------
    def runtime_env(self) -> dict[str, Any] | None:
        """The job's runtime_env: the config's, with the DAG folder kept on ``PYTHONPATH``."""
        runtime_env = dict(self.config.runtime_env or {})
        env_vars = dict(runtime_env.get("env_vars") or {})
        root = self.task.project_root
        if root is not None and "PYTHONPATH" in env_vars:
            # A PYTHONPATH of the user's replaces the inherited one: keep the DAG folder on it.
            env_vars["PYTHONPATH"] = prepend_path(str(env_vars["PYTHONPATH"]), str(root))
            runtime_env["env_vars"] = env_vars
        return runtime_env or None

    def local_init_kwargs(self, temp_dir: str) -> dict[str, Any]:
        """Arguments of ``ray.init`` for a private local instance."""
        head_params = (self.config.head_node_config.ray_start_params or {}) if self.config.head_node_config else {}
        dashboard = str(head_params.get("include-dashboard", head_params.get("include_dashboard", ""))).lower()
        return {
            "address": "local",  # never attach to RAY_ADDRESS or another task's instance
            "num_cpus": self.local_num_cpus(),
            "runtime_env": self.runtime_env(),
            "include_dashboard": dashboard in _TRUE,
            "dashboard_host": "127.0.0.1",
            "log_to_driver": True,
            "_temp_dir": temp_dir,
        }

    # -- lifecycle ----------------------------------------------------------------------------
    def pre(self) -> dict[str, Any]:
        self.set_default_env("RAY_USAGE_STATS_ENABLED", "0")
        import ray
        from ray import cloudpickle

        if ray.is_initialized():
            self.log.info("Ray is already initialized in this process: %s uses it and leaves it running",
                          self.task.display_name)
        elif self.is_local and not self.config.address:
            self._start_local(ray)
        else:
            where = f"connection {self.conn_id!r}" if self.conn_id else f"address {self.config.address!r}"
            raise FlyteEngineError(
                f"Connecting to an existing Ray cluster ({where}) is not supported yet; "
                "leave conn_id and RayJobConfig.address unset to run Ray locally on the worker"
            )
        self._register_code(cloudpickle)
        return {}

    def _start_local(self, ray: Any) -> None:
        temp_dir = tempfile.mkdtemp(prefix="flyte-ray-", dir=_short_tmp())
        self.add_cleanup(_remove_dir, temp_dir)
        self.add_cleanup(_restore_environ, _snapshot_environ("PYTHONBREAKPOINT", "RAY_AUTH_MODE"))
        # Registered before ray.init: a start that fails half-way is torn down as well.
        self.add_cleanup(_shutdown_and_reap, ray, temp_dir)
        kwargs = self.local_init_kwargs(temp_dir)
        requested = self.requested_cpus()
        _ensure_auth_token()
        root = str(self.task.project_root) if self.task.project_root else None
        with _raylet_environ(ray, root), _random_local_ports(), _keep_sigterm_handler():
            ray.init(**kwargs)
        self.log.info(
            "Started a local Ray instance for %s: %s CPUs (the config asks for %g), temp dir %s, runtime_env %s",
            self.task.display_name, kwargs["num_cpus"], requested, temp_dir, kwargs["runtime_env"],
        )

    def _register_code(self, cloudpickle: Any) -> None:
        """Pickle functions from the DAG file by value: other processes cannot import that module."""
        fn = self.task.python_callable
        if fn is None:
            return
        for module in modules_to_pickle_by_value(fn):
            try:
                cloudpickle.register_pickle_by_value(module)
            except ValueError:
                continue
            self.add_cleanup(_unregister_by_value, cloudpickle, module)


def _cpus(params: Mapping[str, str] | None, requests: Resources | None, limits: Resources | None) -> float | None:
    """A node's CPUs: ``num-cpus`` from ray_start_params, else its requests, else its limits."""
    for key in ("num-cpus", "num_cpus"):
        if params and key in params:
            try:
                return float(params[key])
            except ValueError:
                from airflow_provider_flyte.exceptions import FlyteConfigError

                raise FlyteConfigError(
                    f"ray_start_params[{key!r}]", params[key], "not a number", 'use a count such as "2"'
                ) from None
    for resources in (requests, limits):
        if resources is not None and resources.cpu_request is not None:
            return resources.cpu_request
    return None


def _machine_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _short_tmp() -> str:
    """``/tmp`` when usable: Ray's socket paths under the temp dir must stay short."""
    return "/tmp" if os.path.isdir("/tmp") and os.access("/tmp", os.W_OK) else tempfile.gettempdir()


def _ensure_auth_token() -> None:
    """Create ``~/.ray/auth_token`` atomically if token auth is on and no token exists.

    Ray writes the token itself when it is missing, but two tasks starting at once could
    each write a different one, and a raylet could read the other's.
    """
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token":
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth_token.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: the first writer wins, later ones keep its token
    finally:
        os.unlink(tmp)


@contextlib.contextmanager
def _raylet_environ(ray: Any, project_root: str | None) -> Iterator[None]:
    """The environment the Ray processes are started with (inherited by every Ray worker).

    Ray binds to 127.0.0.1 only when it takes this machine for a single-node setup
    (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``); the metrics ports become random.
    """
    changes = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "AUTOSCALER_METRIC_PORT": "0", "DASHBOARD_METRIC_PORT": "0"}
    changes = {key: value for key, value in changes.items() if key not in os.environ}
    if project_root:
        changes["PYTHONPATH"] = prepend_path(os.environ.get("PYTHONPATH"), project_root)
    previous = _snapshot_environ(*changes)
    constants = ray._private.ray_constants
    cluster_mode = constants.ENABLE_RAY_CLUSTER
    os.environ.update(changes)
    constants.ENABLE_RAY_CLUSTER = os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"].lower() in _TRUE
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = cluster_mode
        _restore_environ(previous)


@contextlib.contextmanager
def _random_local_ports() -> Iterator[None]:
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


@contextlib.contextmanager
def _keep_sigterm_handler() -> Iterator[None]:
    """``ray.init`` replaces the SIGTERM handler; keep Airflow's, which runs ``on_kill``."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if handler is not None:
            signal.signal(signal.SIGTERM, handler)


def _ray_processes(temp_dir: str) -> list[Any]:
    """This process's descendants that belong to the instance in ``temp_dir``, with their children."""
    import psutil

    found: dict[int, Any] = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            if any(temp_dir in arg for arg in proc.cmdline()):
                found[proc.pid] = proc
                found.update((child.pid, child) for child in proc.children(recursive=True))
        except psutil.Error:
            continue
    return list(found.values())


def _shutdown_and_reap(ray: Any, temp_dir: str) -> None:
    """``ray.shutdown()``, then make sure every process of the instance has exited."""
    import psutil

    procs = _ray_processes(temp_dir)
    ray.shutdown()
    _, alive = psutil.wait_procs(procs, timeout=_EXIT_TIMEOUT_S)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not alive:
            return
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
        _, alive = psutil.wait_procs(alive, timeout=5)
    if alive:
        raise FlyteEngineError(f"Ray processes did not exit: {[p.pid for p in alive]}")


def _remove_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):  # a process wrote while it was being removed
        shutil.rmtree(path)


def _unregister_by_value(cloudpickle: Any, module: Any) -> None:
    with contextlib.suppress(ValueError):
        cloudpickle.unregister_pickle_by_value(module)


def _snapshot_environ(*keys: str) -> dict[str, str | None]:
    return {key: os.environ.get(key) for key in keys}


def _restore_environ(previous: Mapping[str, str | None]) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
