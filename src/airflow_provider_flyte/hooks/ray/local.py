"""Ray embedded on the worker: a private local instance per task (own temp dir, loopback, random ports)."""

from __future__ import annotations

import os
from typing import Any

from airflow_provider_flyte.core.spec import LOCAL
from airflow_provider_flyte.hooks.ray import (
    FlyteRayHook,
    _descendant_pids,
    _ensure_auth_token,
    _keep_sigterm_handler,
    _loggable,
    _random_local_ports,
    _raylet_environ,
    _reload_auth,
    _restore_auth,
    _short_tmp,
    _shutdown_and_reap,
    _snapshot_environ,
    restore_environ,
)


class LocalRayHook(FlyteRayHook):
    """``ray.init(address="local")`` sized by the config's head and worker groups; reaped in post."""

    placement = LOCAL

    def start(self, ray: Any) -> None:
        temp_dir = self.scratch_dir("ray", parent=_short_tmp())
        self.add_cleanup(restore_environ, _snapshot_environ("PYTHONBREAKPOINT"))
        # Token auth is Ray's default for a local cluster; saying so explicitly (as Ray asks) keeps its
        # "Token authentication is enabled for this Ray cluster" warning out of every task log.
        # RAY_AUTH_MODE=disabled in the worker's environment is kept. Restored after ray.shutdown().
        self.add_cleanup(_restore_auth, _snapshot_environ("RAY_AUTH_MODE"))
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        _reload_auth()  # Ray caches the mode per process
        # Registered before ray.init: a start that fails half-way is torn down as well.
        self.add_cleanup(_shutdown_and_reap, ray, temp_dir, _descendant_pids())
        kwargs = self.local_init_kwargs(temp_dir)
        self.add_cleanup(_ray_logs_to_task_log())
        requested = self.requested_cpus()
        _ensure_auth_token()
        root = str(self.task.project_root) if self.task.project_root else None
        with _raylet_environ(ray, root, temp_dir), _random_local_ports(), _keep_sigterm_handler():
            context = ray.init(**kwargs)
        if kwargs["include_dashboard"]:
            self._record_dashboard(context, None)
        self.log.info(
            "Started a local Ray instance for %s: %s CPUs (the config asks for %g), temp dir %s, runtime_env %s",
            self.task.display_name, kwargs["num_cpus"], requested, temp_dir, _loggable(kwargs["runtime_env"]),
        )


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

