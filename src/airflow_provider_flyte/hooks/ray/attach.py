"""Ray on an existing cluster: a driver connected by Ray Client (``ray://``) or the GCS address."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.spec import ATTACH
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.ray import CLIENT_SCHEME, GCS_SCHEME, NAMESPACE_EXTRA, FlyteRayHook
from airflow_provider_flyte.hooks.ray.auth import (
    AUTH_ENV,
    TOKEN_AUTH_SINCE,
    reload_auth,
    restore_auth,
    token_auth_supported,
)
from airflow_provider_flyte.hooks.ray.driver import keep_sigterm_handler, loggable, shutdown
from airflow_provider_flyte.hooks.ray.gcs import (
    bounded_gcs_wait,
    gcs_is_silent,
    keep_loopback_gcs,
    reinitialize_config,
)
from airflow_provider_flyte.hygiene.environ import snapshot as snapshot_environ
from airflow_provider_flyte.hygiene.signals import sigterm_stops_wait

if TYPE_CHECKING:
    from airflow_provider_flyte.bundle import CodeBundle


class AttachRayHook(FlyteRayHook):
    """``ray.init(address=...)`` with the code bundle as ``working_dir``; post only disconnects."""

    placement = ATTACH

    def start(self, ray: Any) -> None:
        from airflow_provider_flyte.hooks.clusters import DEFAULT_PROBE_TIMEOUT_S, no_answer_error, probe

        target = self.cluster_target()
        where = self._describe(target)
        if target is not None:
            kind = "Ray Client server" if target.scheme == CLIENT_SCHEME else "Ray cluster (GCS)"
            probe(target, timeout=target.connect_timeout, engine=kind)
            if target.scheme == GCS_SCHEME:
                with sigterm_stops_wait(target.describe()):
                    if gcs_is_silent(self.init_address(target), target.connect_timeout):
                        raise no_answer_error(target, kind, target.connect_timeout, "no gRPC handshake")
        # Restored after ray.shutdown() (cleanups run in reverse order).
        self.add_cleanup(restore_auth, snapshot_environ(*AUTH_ENV))
        if target is not None and target.token:
            _require_token_auth(target.conn_id)
            os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=target.token)
            os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
        reload_auth()  # Ray caches the mode and token per process: read the current ones

        bundle = self.code_bundle("zip")
        extracted = None
        if bundle is not None and (self.config.runtime_env or {}).get("working_dir") is not None:
            extracted = self._extract(bundle)
        runtime_env = self.cluster_runtime_env(bundle, extracted)
        namespace = target.extra.get(NAMESPACE_EXTRA) if target is not None else None
        address = self.init_address(target)
        timeout = target.connect_timeout if target is not None else DEFAULT_PROBE_TIMEOUT_S
        self.add_cleanup(reinitialize_config)  # after ray.shutdown: Ray's own GCS waits again
        self.add_cleanup(shutdown, ray)  # before ray.init: a connection that fails half-way is closed too
        try:
            with keep_loopback_gcs(ray, target), keep_sigterm_handler(), bounded_gcs_wait(timeout):
                context = ray.init(address=address, runtime_env=runtime_env, namespace=namespace or None,
                                   log_to_driver=True)
        except Exception as exc:
            if isinstance(exc, ConnectionError) and target is not None and target.scheme == GCS_SCHEME:
                # The TCP probe passed: a GCS that accepts and does not answer.
                raise no_answer_error(target, "Ray cluster (GCS)", timeout, exc) from exc
            raise FlyteEngineError(f"Cannot connect to the Ray cluster at {where}: {exc}") from exc
        self.log.info("Connected %s to the Ray cluster at %s (namespace %s), runtime_env %s",
                      self.task.display_name, where, namespace, loggable(runtime_env))
        self._record_dashboard(context, target)

    def _extract(self, bundle: CodeBundle) -> Path:
        from airflow_provider_flyte.bundle import extract_bundle

        parent = self.scratch_dir("ray-bundle")
        return extract_bundle(bundle.path, Path(parent) / bundle.digest[:16], expected_digest=bundle.digest)


def _require_token_auth(conn_id: str | None) -> None:
    """A connection password is a Ray auth token: refuse it where Ray has no token auth."""
    if token_auth_supported():
        return
    import ray

    raise FlyteConfigError(
        f"connection {conn_id!r}.password",
        "***",
        f"a Ray auth token, but the installed ray {ray.__version__} has no token authentication "
        f"(added in Ray {TOKEN_AUTH_SINCE})",
        f"install ray>={TOKEN_AUTH_SINCE}, or clear the connection's password for a cluster without token auth",
    )
