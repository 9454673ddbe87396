"""The worker's side of a remote run: stage a task for the in-cluster entrypoint, read its outcome back."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.core.calls import dumps_call
from airflow_provider_flyte.core.spec import IN_CLUSTER, TaskSpec
from airflow_provider_flyte.exceptions import FlyteEngineError

if TYPE_CHECKING:
    from airflow_provider_flyte.core.sealed import Sealed
    from airflow_provider_flyte.remote.staging import StagedTask

log = logging.getLogger(__name__)


class RemoteTaskError(FlyteEngineError):
    """The task raised where it ran; the message carries the remote exception and traceback."""

    def __init__(self, error: Mapping[str, Any], where: str = "remotely") -> None:
        self.remote_type = str(error.get("type", "Exception"))
        self.remote_message = str(error.get("message", ""))
        self.remote_traceback = str(error.get("traceback", ""))
        super().__init__(
            f"The task failed {where}: {self.remote_type}: {self.remote_message}\n"
            f"Remote traceback:\n{self.remote_traceback.rstrip()}"
        )


def stage_task(spec: TaskSpec, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], *,
               run_key: str | None = None, base: Any = None, conn_id: str | None = None,
               sealed: Sealed | None = None) -> StagedTask:
    """Stage ``fn(*args, **kwargs)`` with its spec (placement ``in_cluster``) and code bundle.

    :param sealed: secret values the spec must not hold (they reach the pod through the job's ``Secret``):
        ``spec.json`` gets placeholders instead, which the entrypoint replaces.
    """
    from airflow_provider_flyte.hooks.base import code_bundle_enabled
    from airflow_provider_flyte.remote import staging

    payload = dumps_call(fn, args, kwargs, where="the cluster")
    bundle = None
    root = spec.task.project_root
    if code_bundle_enabled() and root is not None and root.is_dir():
        from airflow_provider_flyte.bundle import build_bundle

        bundle = build_bundle(root, fmt="zip")
    info = spec.task
    key = run_key or staging.run_key_for(info.dag_id, info.task_id, info.run_id or "manual", info.try_number,
                                         info.map_index)
    document = spec.with_changes(placement=IN_CLUSTER).to_json()
    if sealed:
        document = sealed.seal_document(document)
    staged = staging.stage(document, payload, bundle, run_key=key, base=base, conn_id=conn_id)
    log.info("Staged %s at %s (bundle %s)", info.display_name, staged.spec_uri,
             "uploaded" if staged.uploaded_bundle else ("unchanged" if bundle else "none"))
    return staged


def read_result(staged: StagedTask | str, *, conn_id: str | None = None, where: str = "remotely") -> Any:
    """The staged run's return value; :class:`RemoteTaskError` if it failed; ``LookupError`` if neither yet."""
    import cloudpickle

    from airflow_provider_flyte.remote import staging

    outcome = staging.read_outcome(staged, conn_id=conn_id)
    if outcome is None:
        raise LookupError(f"no result or error at {getattr(staged, 'run_uri', staged)} yet")
    kind, value = outcome
    if kind == "error":
        assert isinstance(value, Mapping)
        raise RemoteTaskError(value, where)
    assert isinstance(value, bytes)
    return cloudpickle.loads(value)


def complete_deferred(event: Mapping[str, Any], *, logger: Any = None) -> Any:
    """The result of a remote run that was waited on by a trigger (see the Kubernetes placement)."""
    from airflow_provider_flyte.remote.jobs import complete

    return complete(event, logger=logger or log)
