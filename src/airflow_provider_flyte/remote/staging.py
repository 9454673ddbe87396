"""The worker's side of a remote run: stage a task for the in-cluster entrypoint, read its outcome, clean up.

:func:`stage_task` pickles the call, builds the code bundle and hands them with the spec to
:func:`stage`, which uploads them under ``<base>/runs/<run_key>/`` (the layout:
:mod:`~airflow_provider_flyte.remote.layout`); :func:`read_result` turns the pod's outcome into the
task's return value or a :class:`RemoteTaskError`; :func:`cleanup_run` removes the run. Every store
call is bounded in time (:mod:`~airflow_provider_flyte.remote.store`). See docs/staging.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.bundle.build import FORMATS, CodeBundle
from airflow_provider_flyte.bundle.calls import dumps_call
from airflow_provider_flyte.core import settings
from airflow_provider_flyte.core.spec import IN_CLUSTER, TaskSpec
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.remote import store
from airflow_provider_flyte.remote.layout import (
    BUNDLES_DIR,
    ERROR_NAME,
    PAYLOAD_NAME,
    RESULT_NAME,
    RUNS_DIR,
    SPEC_NAME,
    STAGING_FORMAT_VERSION,
    StagedTask,
    run_key_for,
    run_path,
    validate_run_key,
)
from airflow_provider_flyte.remote.store import (
    DEFAULT_TIMEOUT,
    TRANSFER_BYTES_PER_S,
    StagingError,
    check_timeout,
    resolve_base,
    uri_of,
)

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem

    from airflow_provider_flyte.core.sealed import Sealed

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

    The bundle is built unless ``[flyte] code_bundle`` is off or the task has no project root.

    :param sealed: secret values the spec must not hold (they reach the pod through the job's ``Secret``):
        ``spec.json`` gets placeholders instead, which the entrypoint replaces.
    """
    payload = dumps_call(fn, args, kwargs, where="the cluster")
    bundle = None
    root = spec.task.project_root
    if settings.flag("code_bundle") and root is not None and root.is_dir():
        from airflow_provider_flyte.bundle import build_bundle

        bundle = build_bundle(root, fmt="zip")
    info = spec.task
    key = run_key or run_key_for(info.dag_id, info.task_id, info.run_id or "manual", info.try_number,
                                 info.map_index)
    document = spec.with_changes(placement=IN_CLUSTER).to_json()
    if sealed:
        document = sealed.seal_document(document)
    staged = stage(document, payload, bundle, run_key=key, base=base, conn_id=conn_id)
    log.info("Staged %s at %s (bundle %s)", info.display_name, staged.spec_uri,
             "uploaded" if staged.uploaded_bundle else ("unchanged" if bundle else "none"))
    return staged


def read_result(staged: StagedTask | str, *, conn_id: str | None = None, where: str = "remotely") -> Any:
    """The staged run's return value; :class:`RemoteTaskError` if it failed; ``LookupError`` if neither yet."""
    import cloudpickle

    outcome = read_outcome(staged, conn_id=conn_id)
    if outcome is None:
        raise LookupError(f"no result or error at {getattr(staged, 'run_uri', staged)} yet")
    kind, value = outcome
    if kind == "error":
        assert isinstance(value, Mapping)
        raise RemoteTaskError(value, where)
    assert isinstance(value, bytes)
    return cloudpickle.loads(value)


# -- the store operations -------------------------------------------------------------------


def stage(
    spec: Mapping[str, Any],
    payload: bytes,
    bundle: CodeBundle | None,
    *,
    run_key: str,
    base: ObjectStoragePath | str | None = None,
    conn_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> StagedTask:
    """Upload the bundle (unless already there), the payload and the spec of one run.

    The bundle goes to ``<base>/bundles/<digest><ext>`` and is skipped when an object of
    that name and the same size exists, so an unchanged tree uploads nothing. A result or
    error left by an earlier run of the same key is removed. ``spec.json`` is written last:
    once it exists, the run is completely staged.

    :param spec: the task spec, JSON-serialisable; its ``staging`` key is set (replaced) here.
    :param payload: the call payload (opaque bytes).
    :param bundle: the code bundle, or ``None``.
    :param run_key: one path segment naming the run (see :func:`run_key_for`).
    :param base: the staging prefix; default :func:`staging_base` (``[flyte] staging_uri``).
    :param conn_id: the store's connection; default: ``base``'s, else ``[flyte] staging_conn_id``.
    :param timeout: seconds each store operation may take (bundle uploads: plus 1 s per MiB).
    :raises FlyteConfigError: bad run key, timeout, payload or spec, or no staging URI.
    :raises StagingError: the store is unreachable, refuses access, or has no credentials.
    """
    validate_run_key(run_key)
    check_timeout(timeout)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise FlyteConfigError("stage(payload=...)", type(payload).__name__, "the payload is not bytes",
                               "pass the pickled call (cloudpickle.dumps(...))")
    payload = bytes(payload)
    root = resolve_base(base, conn_id)
    root_uri = uri_of(root)
    run = root / RUNS_DIR / run_key
    spec_path, payload_path = run / SPEC_NAME, run / PAYLOAD_NAME
    result_path, error_path = run / RESULT_NAME, run / ERROR_NAME
    bundle_path = root / BUNDLES_DIR / f"{bundle.digest}{FORMATS[bundle.format]}" if bundle else None

    section: dict[str, Any] = {
        "format_version": STAGING_FORMAT_VERSION,
        "base": root_uri,
        "run_key": run_key,
        "bundle": None if bundle is None or bundle_path is None else {
            "uri": uri_of(bundle_path), "digest": bundle.digest, "fmt": bundle.format, "size": bundle.size,
        },
        "payload": {"uri": uri_of(payload_path), "sha256": hashlib.sha256(payload).hexdigest(),
                    "size": len(payload)},
        "result_uri": uri_of(result_path),
        "error_uri": uri_of(error_path),
        "conn_id": root.conn_id,
    }
    document = dict(spec)
    if "staging" in document:
        log.debug("Staging: replacing the spec's existing 'staging' section")
    document["staging"] = section
    try:
        spec_bytes = json.dumps(document, indent=1, sort_keys=True, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise FlyteConfigError("stage(spec=...)", sorted(spec), f"the task spec is not JSON-serialisable ({exc})",
                               "pass TaskSpec.to_dict() or another dict of plain JSON values") from exc

    fs = store.filesystem(root, timeout)
    uploaded = False
    if bundle is not None and bundle_path is not None:
        uploaded = _upload_bundle(fs, bundle, bundle_path, timeout)
    for stale in (result_path, error_path):
        if store.exists(fs, stale, timeout):
            log.warning("Staging: removing %s left by an earlier run of key %s", uri_of(stale), run_key)
            store.remove(fs, stale, timeout)
    store.write(fs, payload_path, payload, timeout)
    store.write(fs, spec_path, spec_bytes, timeout)
    log.info("Staged run %s under %s (bundle %s)", run_key, root_uri,
             "uploaded" if uploaded else ("already there" if bundle is not None else "none"))
    return StagedTask(
        base=root_uri, spec_uri=uri_of(spec_path), result_uri=section["result_uri"],
        error_uri=section["error_uri"], bundle_uri=uri_of(bundle_path) if bundle_path is not None else None,
        uploaded_bundle=uploaded, run_key=run_key, payload_uri=section["payload"]["uri"], conn_id=root.conn_id,
    )


def read_outcome(
    staged: StagedTask | str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> tuple[str, bytes | dict[str, Any]] | None:
    """The run's outcome: ``("error", dict)``, ``("result", bytes)``, or ``None`` if neither is there yet.

    An error wins over a result (a pod that wrote both failed after writing the result).

    :param staged: what :func:`stage` returned, or the URI of the run's ``spec.json`` or folder.
    :param conn_id: the store's connection; default: ``staged.conn_id``, else
        ``[flyte] staging_conn_id`` for a URI.
    :raises StagingError: the store is unreachable, or ``error.json`` is not valid JSON.
    """
    check_timeout(timeout)
    run = run_path(staged, conn_id)
    fs = store.filesystem(run, timeout)
    error_path, result_path = run / ERROR_NAME, run / RESULT_NAME
    if store.exists(fs, error_path, timeout):
        raw = store.read(fs, error_path, timeout,
                         missing=f"the error file {uri_of(error_path)} vanished while it was read")
        try:
            error = json.loads(raw.decode("utf-8"))
            if not isinstance(error, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise StagingError(f"The task's error file {uri_of(error_path)} is not valid JSON ({exc}); "
                               "the pod may have been killed while writing it. Fix: see the pod's log",
                               uri=uri_of(error_path)) from exc
        return "error", error
    if store.exists(fs, result_path, timeout):
        return "result", store.read(fs, result_path, timeout,
                                    missing=f"the result {uri_of(result_path)} vanished while it was read")
    return None


def cleanup_run(staged: StagedTask | str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Remove ``<base>/runs/<run_key>/`` (bundles stay: other runs share them). A missing run is fine.

    :param staged: what :func:`stage` returned, or the URI of the run's ``spec.json`` or folder
        (which must be ``.../runs/<run_key>``: nothing else is deleted).
    """
    check_timeout(timeout)
    run = run_path(staged, conn_id)
    store.remove_tree(store.filesystem(run, timeout), run, timeout)


def _upload_bundle(fs: AbstractFileSystem, bundle: CodeBundle, path: ObjectStoragePath, timeout: float) -> bool:
    """Upload the bundle unless an object of its name and size is there; whether it uploaded."""
    existing = store.size(fs, path, timeout)
    if existing == bundle.size:
        log.debug("Staging: bundle %s already in the store", uri_of(path))
        return False
    if existing is not None:
        log.warning("Staging: bundle %s in the store has %d bytes, not %d: uploading it again",
                    uri_of(path), existing, bundle.size)
    store.write(fs, path, b"", timeout + bundle.size / TRANSFER_BYTES_PER_S, source=bundle.path)
    return True


__all__ = [
    "RemoteTaskError",
    "cleanup_run",
    "read_outcome",
    "read_result",
    "stage",
    "stage_task",
]
