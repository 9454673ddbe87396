"""The hook side of the ``warm`` placement, shared by every engine: lease a warm server for the task.

An engine's ``hooks/<engine>/warm.py`` subclasses its attach placement and takes the cluster
address from :func:`lease_server` instead of a connection. The lease is released in ``post``
(after the engine's client is closed); the task log says whether the server was started or
reused, and which one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.exceptions import FlyteEngineError

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.base import FlyteEngineHook
    from airflow_provider_flyte.hooks.clusters import ClusterTarget
    from airflow_provider_flyte.warm.pool import Lease

#: ``ClusterTarget.conn_id`` of a warm server (no Airflow connection exists for it).
WARM_CONN_PREFIX = "warm:"


def lease_server(hook: FlyteEngineHook[Any], *, server_module: str, params: Mapping[str, Any],
                 conn_type: str) -> tuple[Lease, ClusterTarget]:
    """Find or start the task's warm server; return the lease and the target to attach to."""
    from airflow_provider_flyte.hooks.clusters import ClusterTarget
    from airflow_provider_flyte.lineage.parent import without_lineage_env
    from airflow_provider_flyte.warm import pool
    from airflow_provider_flyte.warm.fingerprint import fingerprint
    from airflow_provider_flyte.warm.run_end import dag_run_key

    policy = hook.spec.reusable
    if not policy:
        raise RuntimeError("the warm placement needs a ReusePolicy in the task spec")
    run_key = dag_run_key(str(hook.task.dag_id), str(hook.task.run_id)) if policy.get("scope") == "run" else None
    engine = hook.engine_name
    # a task run's OpenLineage parent goes to its own job, never into the server's identity (docs/lineage.md)
    env_vars = without_lineage_env(hook.spec.env_vars)
    digest = fingerprint(engine, params, env_vars=env_vars, image=hook.spec.image, run_key=run_key)
    lease = pool.acquire(engine, digest, policy, server_module=server_module, params=params,
                         env=server_environ(hook), run_key=run_key)
    hook.add_cleanup(lease.release)
    record = lease.record
    verb = "Started" if lease.started else "Reusing"
    hook.log.info("%s warm %s server %s at %s (acquired in %.2fs; fingerprint %s)", verb, engine,
                  lease.describe(), record.address, lease.acquire_s, digest[:12])
    hook.links["warm_server"] = record.name
    target = ClusterTarget(conn_id=f"{WARM_CONN_PREFIX}{record.name}", conn_type=conn_type,
                           address=str(record.address), token=record.token, extra={})
    return lease, target


def server_environ(hook: FlyteEngineHook[Any]) -> dict[str, str]:
    """The environment a new server starts with: this task's, without Airflow settings and without the
    task's secrets (a server outlives the task and serves others; it is also written to the server's
    ``launch.json``, mode 0600)."""
    from airflow_provider_flyte.secrets import SECRETS_DIR_ENV

    secret_names = {str(ref["as_env_var"]) for ref in hook.spec.secrets if ref.get("as_env_var")}
    secret_names.add(SECRETS_DIR_ENV)
    from airflow_provider_flyte.lineage.parent import ENV_NAMES  # a task run's parent, not the server's

    secret_names.update(ENV_NAMES)
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW") and k not in secret_names}


def server_died(lease: Lease | None, engine: str, exc: BaseException) -> BaseException:
    """The error to raise when the task failed: a clear one if the warm server died under it."""
    if lease is None or lease.server_alive():
        return exc
    return FlyteEngineError(
        f"The warm {engine} server {lease.describe()} died during the task ({type(exc).__name__}: {exc}). "
        "The next task starts a fresh server; retry this one (Airflow retries do)."
    )


class WarmRun:
    """Mixin of an engine's warm placement: the lease, and a clear error when the server died mid-task."""

    lease: Lease | None = None
    engine_name: str

    def run(self, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        try:
            return super().run(fn, args, kwargs)  # type: ignore[misc]
        except Exception as exc:
            error = server_died(self.lease, self.engine_name, exc)
            if error is exc:
                raise
            raise error from exc
