"""Ray inside the cluster KubeRay started: the task is the RayJob's entrypoint, a driver on the head.

KubeRay's submitter runs the entrypoint with ``RAY_ADDRESS`` pointing at the head, so
``ray.init(address="auto")`` joins that cluster; the code bundle becomes the job's ``working_dir``
so every worker imports the task's modules. ``post`` disconnects; KubeRay tears the cluster down.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_flyte.core.spec import IN_CLUSTER
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.hooks.ray import FlyteRayHook
from airflow_provider_flyte.hooks.ray.driver import keep_sigterm_handler, loggable, shutdown


class InClusterRayHook(FlyteRayHook):
    """A driver on the Ray cluster this process already runs in."""

    placement = IN_CLUSTER

    def start(self, ray: Any) -> None:
        runtime_env = self.driver_runtime_env(self.cluster_runtime_env(self.code_bundle("zip")))
        self.add_cleanup(shutdown, ray)
        try:
            with keep_sigterm_handler():
                context = ray.init(address="auto", runtime_env=runtime_env, log_to_driver=True)
        except Exception as exc:
            raise FlyteEngineError(f"Cannot join the Ray cluster this pod runs in (address 'auto'): {exc}") from exc
        self.log.info("Joined the Ray cluster at %s as %s, runtime_env %s",
                      getattr(context, "address_info", {}).get("gcs_address", "auto"), self.task.display_name,
                      loggable(runtime_env))
        self._record_dashboard(context, None)

    def driver_runtime_env(self, full: dict[str, Any] | None) -> dict[str, Any] | None:
        """What the driver adds to the job's runtime_env: only what the RayJob does not carry.

        The RayJob's ``runtimeEnvYAML`` already holds ``RayJobConfig.runtime_env`` and the task's env
        vars (manifests/ray.py), and Ray refuses a driver's ``ray.init(runtime_env=...)`` that names a
        field, or an env var, the job's runtime_env names too ("Failed to merge the Job's runtime env").
        So the driver adds the code bundle (``working_dir`` / ``py_modules``) and nothing else.
        """
        carried = {*(self.config.runtime_env or {}), "env_vars"}
        added = {key: value for key, value in (full or {}).items() if key not in carried}
        return added or None

