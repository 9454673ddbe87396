"""Staging: a remote task's code bundle, call payload and spec under one object-store prefix.

A task that runs in a Kubernetes pod started by an engine operator cannot read the Airflow
worker's disk. The worker *stages* what the pod needs under ``[flyte] staging_uri``; the
in-cluster entrypoint reads it back and writes the outcome next to the spec; the worker
reads the outcome and cleans up::

    <base>/bundles/<digest>.zip|.tar.gz     content-addressed, shared by all runs
    <base>/runs/<run_key>/spec.json         the task spec plus a "staging" section
    <base>/runs/<run_key>/payload.pkl       the call payload (opaque bytes)
    <base>/runs/<run_key>/result.pkl        written by the pod on success (opaque bytes)
    <base>/runs/<run_key>/error.json        written by the pod on failure

All store access goes through Airflow's :class:`~airflow.sdk.ObjectStoragePath`: the
filesystem is the one Airflow attaches for the URI's scheme and the connection
(``s3://`` through the Amazon provider and s3fs, ``gs://`` through the Google provider,
``file://`` locally, ...). Operations call the fsspec methods of ``ObjectStoragePath.fs``
with ``ObjectStoragePath.path``, so that a path with and without a ``conn_id`` uses the same
connection-aware filesystem.

**Bounded time.** Every store operation runs in a daemon thread and the caller waits for it
at most ``timeout`` seconds (bundle transfers get one extra second per MiB). When the
deadline passes the call raises :class:`StagingError` naming the URI; the abandoned thread
finishes (or fails) in the background and, being a daemon, never holds up interpreter exit.
This works for every fsspec backend, whatever retry policy its client has (botocore with
its default retries spends about 11 s on a closed port before it gives up) and without
changing the user's connection. To make the background attempt itself give up sooner on
S3, put ``{"config_kwargs": {"connect_timeout": 5, "retries": {"max_attempts": 2}}}`` in the
``aws`` connection's extra.

**Credentials** come from the Airflow connection named by ``conn_id`` (default
``[flyte] staging_conn_id``); only its *id* is written into ``spec.json``. The pod needs a
connection of the same id (e.g. ``AIRFLOW_CONN_<ID>`` from a Kubernetes secret) or
credentials of its own (IRSA, workload identity) with ``conn_id`` unset. An S3 store for
which neither the connection nor the environment yields credentials is refused before any
request is sent: the Amazon provider would otherwise fall back to anonymous access.

See docs/staging.md.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
import traceback as traceback_module
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_flyte.bundle.build import FORMATS, CodeBundle
from airflow_provider_flyte.bundle.extract import (
    BundleDigestError,
    BundleError,
    UnsafeBundleError,
    extract_bundle,
)
from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem

log = logging.getLogger(__name__)

#: Version of the ``staging`` section of ``spec.json``; a reader refuses a newer one.
STAGING_FORMAT_VERSION: int = 1

URI_SETTING = "[flyte] staging_uri (AIRFLOW__FLYTE__STAGING_URI)"
CONN_SETTING = "[flyte] staging_conn_id (AIRFLOW__FLYTE__STAGING_CONN_ID)"
DEFAULT_TIMEOUT = 30.0

SPEC_NAME = "spec.json"
PAYLOAD_NAME = "payload.pkl"
RESULT_NAME = "result.pkl"
ERROR_NAME = "error.json"
BUNDLES_DIR = "bundles"
RUNS_DIR = "runs"

#: Characters a run key may hold: safe in S3/GCS object keys and in local file names.
RUN_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+@,~-]*")
RUN_KEY_MAX = 200

#: Bundle transfers may take ``timeout`` plus one second per this many bytes.
_TRANSFER_BYTES_PER_S = 1024 * 1024
_S3_PROTOCOLS = frozenset({"s3", "s3a", "s3n"})
#: Stores where a single PUT is atomic and "folders" need not be created.
_OBJECT_STORES = _S3_PROTOCOLS | {"gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "r2"}
_LOCAL_PROTOCOLS = frozenset({"file", "local"})

_T = TypeVar("_T")


class StagingError(FlyteEngineError):
    """The staging store could not be reached, or what is staged there is missing or invalid.

    :param uri: the object or prefix concerned.
    """

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        self.uri = uri
        super().__init__(message)


class BundleIntegrityError(StagingError, BundleDigestError):
    """The staged code bundle does not match the digest recorded in the spec (tampered or corrupt)."""


class UnsafeStagedBundleError(StagingError, UnsafeBundleError):
    """The staged code bundle holds an entry that would be written outside the target."""


@dataclass(frozen=True)
class StagedTask:
    """Where one staged run lives.

    :param base: the staging prefix (``s3://bucket/prefix``), without credentials.
    :param spec_uri: ``<base>/runs/<run_key>/spec.json``.
    :param result_uri: where the pod writes the result on success.
    :param error_uri: where the pod writes the error on failure.
    :param bundle_uri: the code bundle (``None`` when the task has none).
    :param uploaded_bundle: whether this ``stage`` call uploaded the bundle (``False``: an
        object of that name and size was already there).
    :param run_key: the run's key.
    :param payload_uri: the call payload.
    :param conn_id: the connection of the store (``None``: credentials from the environment).
    """

    base: str
    spec_uri: str
    result_uri: str
    error_uri: str
    bundle_uri: str | None
    uploaded_bundle: bool
    run_key: str = ""
    payload_uri: str = ""
    conn_id: str | None = None

    @property
    def run_uri(self) -> str:
        """The run's folder, ``<base>/runs/<run_key>``."""
        return self.spec_uri.rsplit("/", 1)[0]


# -- configuration ------------------------------------------------------------------------


def staging_base(uri: str | None = None, conn_id: str | None = None) -> ObjectStoragePath:
    """The staging prefix as an ``ObjectStoragePath``.

    :param uri: e.g. ``s3://bucket/airflow-flyte``, ``gs://bucket/prefix``,
        ``file:///shared/staging`` (an absolute path means ``file://``); default
        ``[flyte] staging_uri``.
    :param conn_id: the Airflow connection of the store; default ``[flyte] staging_conn_id``.
        A ``conn_id@`` in the URI (``s3://aws_default@bucket/prefix``, Airflow's notation) is
        honoured and wins over ``[flyte] staging_conn_id`` (not over this argument).
    :raises FlyteConfigError: no URI configured, a relative path, or a scheme no installed
        filesystem handles.
    """
    field = "staging_base(uri=...)"
    if uri is None:
        field = URI_SETTING
        uri = settings.value("staging_uri")
    if uri is None or not str(uri).strip():
        raise FlyteConfigError(
            URI_SETTING, uri,
            "no staging location is configured; a task that runs in a pod needs one to receive its "
            "code bundle and call and to return its result",
            "set AIRFLOW__FLYTE__STAGING_URI (or staging_uri in the [flyte] section of airflow.cfg) "
            "to a prefix both the workers and the pods can reach, e.g. s3://my-bucket/airflow-flyte, "
            "with AIRFLOW__FLYTE__STAGING_CONN_ID=aws_default for its credentials",
        )
    uri = str(uri).strip()
    if "://" not in uri:
        if not os.path.isabs(uri):
            raise FlyteConfigError(
                field, uri, "neither a URI with a scheme nor an absolute path",
                "use e.g. s3://my-bucket/airflow-flyte or file:///shared/staging",
            )
        uri = "file://" + os.path.abspath(uri)
    if conn_id is None and "@" not in urlsplit(uri).netloc:  # a conn_id@ in the URI wins over the config
        conn_id = settings.value("staging_conn_id")
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import has_fs

    scheme = uri.split("://", 1)[0].lower()
    if not has_fs(scheme):
        raise FlyteConfigError(
            field, uri, f"no filesystem is installed for {scheme}://",
            "install the provider of that store in the worker and the image (s3://: "
            "apache-airflow-providers-amazon and s3fs; gs://: apache-airflow-providers-google and "
            "gcsfs), or use another staging URI",
        )
    if not uri.split("://", 1)[1].strip("/"):
        raise FlyteConfigError(field, uri, "the URI names no bucket, container or folder",
                               "use e.g. s3://my-bucket/airflow-flyte or file:///shared/staging")
    try:
        path = ObjectStoragePath(uri.rstrip("/"), conn_id=conn_id)
    except Exception as exc:
        raise FlyteConfigError(field, uri, f"not a valid storage URI ({exc})",
                               "use e.g. s3://my-bucket/airflow-flyte") from exc
    if scheme not in _LOCAL_PROTOCOLS and not path.bucket:
        raise FlyteConfigError(field, uri, "the URI names no bucket or container",
                               "use e.g. s3://my-bucket/airflow-flyte")
    return path


def run_key_for(dag_id: str, task_id: str, run_id: str, try_number: int, map_index: int = -1) -> str:
    """A valid, unique run key for one task try: a readable slug plus a short hash of the inputs.

    Characters a run key may not hold (``run_id`` has ``:`` and ``+``) become ``_``; the hash
    keeps keys that slug alike apart.
    """
    raw = json.dumps([dag_id, task_id, run_id, int(try_number), int(map_index)])
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    parts = [dag_id, task_id, run_id, f"try{int(try_number)}"]
    if map_index >= 0:
        parts.append(f"map{int(map_index)}")
    slug = re.sub(r"[^A-Za-z0-9._=-]+", "_", "__".join(parts)).strip("._-")
    slug = slug[: RUN_KEY_MAX - len(digest) - 2].rstrip("._-")
    return f"{slug}--{digest}" if slug else digest


def validate_run_key(run_key: str) -> str:
    """``run_key`` if it is a single, safe path segment, else :class:`FlyteConfigError`."""
    fix = (f"use one path segment of letters, digits and . _ = + @ , ~ - (at most {RUN_KEY_MAX} "
           "characters, starting with a letter or digit), e.g. from run_key_for(dag_id, task_id, "
           "run_id, try_number, map_index)")
    field = "stage(run_key=...)"
    if not isinstance(run_key, str) or not run_key:
        raise FlyteConfigError(field, run_key, "the run key is empty or not a string", fix)
    if "/" in run_key or "\\" in run_key:
        raise FlyteConfigError(field, run_key, "the run key contains a path separator", fix)
    if ".." in run_key:
        raise FlyteConfigError(field, run_key, "the run key contains '..'", fix)
    if len(run_key) > RUN_KEY_MAX or not RUN_KEY_PATTERN.fullmatch(run_key):
        raise FlyteConfigError(field, run_key, "the run key has characters or a length staging does not allow", fix)
    return run_key


# -- worker side ----------------------------------------------------------------------------


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
    _check_timeout(timeout)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        raise FlyteConfigError("stage(payload=...)", type(payload).__name__, "the payload is not bytes",
                               "pass the pickled call (cloudpickle.dumps(...))")
    payload = bytes(payload)
    root = _resolve_base(base, conn_id)
    root_uri = _uri(root)
    run = root / RUNS_DIR / run_key
    spec_path, payload_path = run / SPEC_NAME, run / PAYLOAD_NAME
    result_path, error_path = run / RESULT_NAME, run / ERROR_NAME
    bundle_path = root / BUNDLES_DIR / f"{bundle.digest}{FORMATS[bundle.format]}" if bundle else None

    section: dict[str, Any] = {
        "format_version": STAGING_FORMAT_VERSION,
        "base": root_uri,
        "run_key": run_key,
        "bundle": None if bundle is None or bundle_path is None else {
            "uri": _uri(bundle_path), "digest": bundle.digest, "fmt": bundle.format, "size": bundle.size,
        },
        "payload": {"uri": _uri(payload_path), "sha256": hashlib.sha256(payload).hexdigest(),
                    "size": len(payload)},
        "result_uri": _uri(result_path),
        "error_uri": _uri(error_path),
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

    fs = _filesystem(root, timeout)
    uploaded = False
    if bundle is not None and bundle_path is not None:
        uploaded = _upload_bundle(fs, bundle, bundle_path, timeout)
    for stale in (result_path, error_path):
        if _exists(fs, stale, timeout):
            log.warning("Staging: removing %s left by an earlier run of key %s", _uri(stale), run_key)
            _remove(fs, stale, timeout)
    _write(fs, payload_path, payload, timeout)
    _write(fs, spec_path, spec_bytes, timeout)
    log.info("Staged run %s under %s (bundle %s)", run_key, root_uri,
             "uploaded" if uploaded else ("already there" if bundle is not None else "none"))
    return StagedTask(
        base=root_uri, spec_uri=_uri(spec_path), result_uri=section["result_uri"],
        error_uri=section["error_uri"], bundle_uri=_uri(bundle_path) if bundle_path is not None else None,
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
    _check_timeout(timeout)
    run = _run_path(staged, conn_id)
    fs = _filesystem(run, timeout)
    error_path, result_path = run / ERROR_NAME, run / RESULT_NAME
    if _exists(fs, error_path, timeout):
        raw = _read(fs, error_path, timeout, missing=f"the error file {_uri(error_path)} vanished while it was read")
        try:
            error = json.loads(raw.decode("utf-8"))
            if not isinstance(error, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise StagingError(f"The task's error file {_uri(error_path)} is not valid JSON ({exc}); "
                               "the pod may have been killed while writing it. Fix: see the pod's log",
                               uri=_uri(error_path)) from exc
        return "error", error
    if _exists(fs, result_path, timeout):
        return "result", _read(fs, result_path, timeout,
                               missing=f"the result {_uri(result_path)} vanished while it was read")
    return None


def cleanup_run(staged: StagedTask | str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Remove ``<base>/runs/<run_key>/`` (bundles stay: other runs share them). A missing run is fine.

    :param staged: what :func:`stage` returned, or the URI of the run's ``spec.json`` or folder
        (which must be ``.../runs/<run_key>``: nothing else is deleted).
    """
    _check_timeout(timeout)
    run = _run_path(staged, conn_id)
    fs = _filesystem(run, timeout)
    uri = _uri(run)

    def remove() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm(run.path, recursive=True)
        fs.invalidate_cache(run.path)

    _bounded("remove", uri, timeout, remove)


# -- pod side -------------------------------------------------------------------------------


def load_spec(spec_uri: str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Read a staged ``spec.json`` and check its ``staging`` section.

    :param spec_uri: ``<base>/runs/<run_key>/spec.json``.
    :param conn_id: the store's connection; default ``[flyte] staging_conn_id``.
    :raises StagingError: missing or unreadable spec, or one written in a newer staging format.
    """
    _check_timeout(timeout)
    path = _path(spec_uri, conn_id, "load_spec(spec_uri=...)")
    fs = _filesystem(path, timeout)
    uri = _uri(path)
    raw = _read(fs, path, timeout, missing=(
        f"No task spec at {uri}: the run was never staged there, or it was cleaned up. "
        "Fix: check the spec URI the pod was given and that the worker and the pod use the same "
        f"{URI_SETTING}"))
    try:
        spec = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise StagingError(f"The task spec {uri} is not valid JSON ({exc}). Fix: stage the task again",
                           uri=uri) from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("staging"), dict):
        raise StagingError(f"The task spec {uri} has no 'staging' section: it was not written by "
                           "airflow_provider_flyte.remote.staging.stage. Fix: stage the task again", uri=uri)
    section = spec["staging"]
    version = section.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise StagingError(f"The task spec {uri} has an invalid staging format_version {version!r}. "
                           "Fix: stage the task again", uri=uri)
    if version > STAGING_FORMAT_VERSION:
        raise StagingError(
            f"The task spec {uri} was written by a newer airflow-provider-flyte (format {version}, "
            f"this one reads up to {STAGING_FORMAT_VERSION}): upgrade the package in the image", uri=uri)
    missing = [key for key in ("bundle", "payload", "result_uri", "error_uri") if key not in section]
    if missing or not isinstance(section["payload"], dict) or not (
            section["bundle"] is None or isinstance(section["bundle"], dict)):
        raise StagingError(f"The task spec {uri} has an incomplete 'staging' section (missing or invalid: "
                           f"{', '.join(missing) or 'bundle/payload'}). Fix: stage the task again", uri=uri)
    return spec


def fetch_bundle(
    spec: Mapping[str, Any],
    dest: str | os.PathLike[str],
    *,
    conn_id: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path | None:
    """Download the spec's code bundle, verify its digest and extract it safely into ``dest``.

    The archive is downloaded to a temporary file next to ``dest`` and removed afterwards;
    :func:`~airflow_provider_flyte.bundle.extract_bundle` checks every entry and the content
    digest before it writes anything. ``dest`` must not exist or be an empty folder.

    :returns: ``dest`` as a ``Path``, or ``None`` when the task has no bundle.
    :raises StagingError: the bundle is missing from the store, or the store is unreachable.
    :raises BundleIntegrityError: the archive does not match the recorded digest (a
        :class:`~airflow_provider_flyte.bundle.BundleDigestError`).
    :raises UnsafeStagedBundleError: an entry would leave ``dest`` (an ``UnsafeBundleError``).
    :raises FileExistsError: ``dest`` exists and is not empty.
    """
    _check_timeout(timeout)
    section = _section(spec)
    info = section.get("bundle")
    if info is None:
        return None
    path = _path(info["uri"], _conn(section, conn_id), "spec staging.bundle.uri")
    uri = _uri(path)
    fs = _filesystem(path, timeout)
    target = Path(dest).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.download-",
                                    suffix=FORMATS.get(info.get("fmt", ""), ""))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        deadline = timeout + int(info.get("size") or 0) / _TRANSFER_BYTES_PER_S
        try:
            _bounded("download", uri, deadline, lambda: fs.get_file(path.path, tmp_name))
        except FileNotFoundError as exc:
            raise StagingError(
                f"The code bundle {uri} is missing from the staging store: it was deleted after the task "
                "was staged (e.g. by a lifecycle rule on bundles/). Fix: run the task again (staging "
                "uploads the bundle again) and keep bundles/ objects longer than a task can wait to start",
                uri=uri) from exc
        try:
            return extract_bundle(tmp, target, expected_digest=info["digest"])
        except UnsafeBundleError as exc:
            raise UnsafeStagedBundleError(f"The code bundle {uri} is unsafe and was not extracted: {exc}",
                                          uri=uri) from exc
        except BundleError as exc:  # digest mismatch, or bytes no longer a readable archive
            raise BundleIntegrityError(
                f"The code bundle {uri} does not match the digest {info['digest']} recorded in the spec: "
                f"it was modified or corrupted in the store ({exc}). Fix: delete it from the store and "
                "run the task again, and check who can write to the staging prefix", uri=uri) from exc
    finally:
        tmp.unlink(missing_ok=True)


def load_payload(spec: Mapping[str, Any], *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> bytes:
    """The call payload, checked against the sha256 recorded in the spec.

    :raises StagingError: missing payload, checksum mismatch, or the store is unreachable.
    """
    _check_timeout(timeout)
    section = _section(spec)
    info = section["payload"]
    path = _path(info["uri"], _conn(section, conn_id), "spec staging.payload.uri")
    uri = _uri(path)
    fs = _filesystem(path, timeout)
    data = _read(fs, path, timeout, missing=(
        f"No call payload at {uri}: the run was cleaned up or its objects were deleted. "
        "Fix: run the task again"))
    actual = hashlib.sha256(data).hexdigest()
    if actual != info["sha256"]:
        raise StagingError(f"The call payload {uri} has sha256 {actual}, not the {info['sha256']} recorded in "
                           "the spec: it was modified or corrupted in the store. Fix: run the task again",
                           uri=uri)
    return data


def write_result(spec: Mapping[str, Any], value: bytes, *, conn_id: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> str:
    """Write the task's result (opaque bytes) to ``result.pkl``; returns its URI."""
    _check_timeout(timeout)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise FlyteConfigError("write_result(value=...)", type(value).__name__, "the result is not bytes",
                               "pickle the return value first")
    section = _section(spec)
    path = _path(section["result_uri"], _conn(section, conn_id), "spec staging.result_uri")
    _write(_filesystem(path, timeout), path, bytes(value), timeout)
    return _uri(path)


def write_error(spec: Mapping[str, Any], error: Mapping[str, Any], *, conn_id: str | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> str:
    """Write the task's error to ``error.json``; returns its URI.

    :param error: ``{"type", "message", "traceback"}`` (missing ones are written as ``""``;
        more keys are kept); :func:`error_from_exception` builds one.
    """
    _check_timeout(timeout)
    document = {key: "" for key in ("type", "message", "traceback")}
    document.update({str(k): v for k, v in error.items()})
    try:
        data = json.dumps(document, indent=1, sort_keys=True, default=repr).encode("utf-8")
    except ValueError as exc:
        raise FlyteConfigError("write_error(error=...)", sorted(document), f"not JSON-serialisable ({exc})",
                               "pass strings for type, message and traceback") from exc
    section = _section(spec)
    path = _path(section["error_uri"], _conn(section, conn_id), "spec staging.error_uri")
    _write(_filesystem(path, timeout), path, data, timeout)
    return _uri(path)


def spec_exists(spec_uri: str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether the run's ``spec.json`` is still in the store (the worker removes a killed or finished run).

    The entrypoint asks before it writes an outcome, so that a pod stopped by its job's deletion
    does not put a run back that the worker has just removed.
    """
    _check_timeout(timeout)
    path = _path(spec_uri, conn_id, "spec_exists(spec_uri=...)")
    return _exists(_filesystem(path, timeout), path, timeout)


def error_from_exception(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message", "traceback"}`` for :func:`write_error`."""
    kind = type(exc)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback_module.format_exception(kind, exc, exc.__traceback__)),
    }


# -- internals ------------------------------------------------------------------------------




def _check_timeout(timeout: float) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise FlyteConfigError("staging timeout", timeout, "not a positive number of seconds", "use e.g. 30")


def _uri(path: ObjectStoragePath) -> str:
    """The path as a URI without credentials or ``conn_id@`` (which ``str()`` would include)."""
    protocol = path.protocol or "file"
    if protocol in _LOCAL_PROTOCOLS:
        return "file://" + path.path
    return f"{protocol}://{path.path}"


def _path(uri: str, conn_id: str | None, field: str) -> ObjectStoragePath:
    if not isinstance(uri, str) or not uri:
        raise StagingError(f"{field}: no URI (got {uri!r}). Fix: stage the task again", uri=None)
    return staging_base(uri, conn_id)


def _resolve_base(base: ObjectStoragePath | str | None, conn_id: str | None) -> ObjectStoragePath:
    if base is None:
        return staging_base(None, conn_id)
    if isinstance(base, str):
        return staging_base(base, conn_id)
    if conn_id is not None and conn_id != base.conn_id:
        return staging_base(_uri(base), conn_id)
    return base


def _run_path(staged: StagedTask | str, conn_id: str | None) -> ObjectStoragePath:
    if isinstance(staged, StagedTask):
        return staging_base(staged.run_uri, conn_id if conn_id is not None else staged.conn_id)
    uri = str(staged).rstrip("/")
    if uri.endswith("/" + SPEC_NAME):
        uri = uri[: -len(SPEC_NAME) - 1]
    parent, _, key = uri.rpartition("/")
    if not parent.endswith("/" + RUNS_DIR):
        raise StagingError(f"{staged!r} is not a staged run: expected <base>/runs/<run_key>[/spec.json]. "
                           "Fix: pass the StagedTask or its spec_uri", uri=str(staged))
    validate_run_key(key)
    return staging_base(uri, conn_id)


def _section(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    section = spec.get("staging") if isinstance(spec, Mapping) else None
    if not isinstance(section, Mapping):
        raise StagingError("The task spec has no 'staging' section. Fix: pass the dict load_spec() returned")
    return section


def _conn(section: Mapping[str, Any], conn_id: str | None) -> str | None:
    value = conn_id if conn_id is not None else section.get("conn_id")
    return value if isinstance(value, str) and value else None


def _bounded(what: str, uri: str, timeout: float, fn: Callable[[], _T]) -> _T:
    """Run ``fn`` in a daemon thread; :class:`StagingError` if it takes longer than ``timeout``.

    Store errors are translated into :class:`StagingError` except ``FileNotFoundError``,
    which callers turn into messages of their own.
    """
    outcome: list[Any] = []
    done = threading.Event()
    context = contextvars.copy_context()

    def target() -> None:
        try:
            outcome.append((True, context.run(fn)))
        except BaseException as exc:  # handed to the caller
            outcome.append((False, exc))
        finally:
            done.set()

    started = time.monotonic()
    thread = threading.Thread(target=target, name=f"flyte-staging-{what}", daemon=True)
    thread.start()
    if not done.wait(timeout):
        raise StagingError(
            f"Staging store did not answer within {timeout:g} s ({what} {uri}): it is unreachable or too "
            f"slow. Fix: check the endpoint and network access to it from here, and the connection "
            f"{CONN_SETTING}; raise the staging timeout for slow stores", uri=uri)
    ok, value = outcome[0]
    if ok:
        return value  # type: ignore[no-any-return]
    if isinstance(value, (FileNotFoundError, StagingError, FlyteConfigError)):
        raise value
    raise _translate(value, what, uri, time.monotonic() - started) from value


def _translate(exc: BaseException, what: str, uri: str, elapsed: float) -> StagingError:
    name = type(exc).__name__
    text = f"{name}: {exc}"
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "NoCredentialsError" in names or "PartialCredentialsError" in names:
        return _no_credentials(uri, text)
    if isinstance(exc, PermissionError) or "AccessDenied" in str(exc) or "Forbidden" in str(exc):
        return StagingError(
            f"Staging store refused access ({what} {uri}): {text}. Fix: give the credentials of "
            f"{CONN_SETTING} read and write access to the staging prefix", uri=uri)
    if names & {"EndpointConnectionError", "ConnectTimeoutError", "ConnectionError", "ClientConnectorError"} \
            or isinstance(exc, (ConnectionError, TimeoutError)):
        return StagingError(
            f"Staging store is unreachable ({what} {uri}, gave up after {elapsed:.1f} s): {text}. Fix: check "
            f"the endpoint of {CONN_SETTING} and network access to it from here", uri=uri)
    return StagingError(f"Staging store operation failed ({what} {uri}): {text}", uri=uri)


def _no_credentials(uri: str, detail: str = "") -> StagingError:
    return StagingError(
        f"No credentials for the staging store {uri}{f' ({detail})' if detail else ''}: neither the connection "
        f"nor the environment provides any. Fix: set {CONN_SETTING} to an Airflow connection with "
        "credentials for the store (e.g. an aws connection with login/password or a role), or give "
        "this worker or pod credentials of its own (IRSA, environment variables)", uri=uri)


def _filesystem(path: ObjectStoragePath, timeout: float) -> AbstractFileSystem:
    """The Airflow-attached filesystem of ``path`` (resolving the connection is bounded too)."""
    uri = _uri(path)
    fs: AbstractFileSystem = _bounded("connect", uri, timeout, lambda: path.fs)
    if (path.protocol or "file") in _S3_PROTOCOLS and getattr(fs, "anon", False):
        # The Amazon provider falls back to anonymous access when it finds no credentials;
        # staging must write, and an anonymous request would go to the real endpoint.
        conn = f"connection {path.conn_id!r}" if path.conn_id else "no connection"
        raise _no_credentials(uri, f"{conn} configured, no AWS credentials in the environment")
    return fs


def _exists(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> bool:
    """Whether the object exists (``fs.exists`` would turn a connection error into ``False``)."""
    return _size(fs, path, timeout) is not None


def _size(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> int | None:
    """The object's size, or ``None`` if there is none."""

    def info() -> int | None:
        fs.invalidate_cache(path.path)
        try:
            found = fs.info(path.path)
        except FileNotFoundError:
            return None
        return int(found["size"]) if found.get("type", "file") == "file" else None

    return _bounded("check", _uri(path), timeout, info)


def _read(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float, *, missing: str) -> bytes:
    uri = _uri(path)
    try:
        return bytes(_bounded("read", uri, timeout, lambda: fs.cat_file(path.path)))
    except FileNotFoundError as exc:
        raise StagingError(missing, uri=uri) from exc


def _remove(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> None:
    def remove() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path.path)
        fs.invalidate_cache(path.path)

    _bounded("remove", _uri(path), timeout, remove)


def _write(fs: AbstractFileSystem, path: ObjectStoragePath, data: bytes, timeout: float,
           *, source: Path | None = None) -> None:
    """Write ``data`` (or the file ``source``) to ``path``, atomically where the store allows.

    Object stores replace an object in one PUT; a local folder gets a temporary file that is
    renamed into place, so a reader never sees a partial file.
    """
    uri = _uri(path)
    protocol = path.protocol or "file"

    def put() -> None:
        parent = path.path.rsplit("/", 1)[0]
        if protocol not in _OBJECT_STORES:
            fs.makedirs(parent, exist_ok=True)
        if protocol in _LOCAL_PROTOCOLS:
            tmp = f"{parent}/.{path.name}.{uuid.uuid4().hex}.partial"
            try:
                if source is not None:
                    fs.put_file(str(source), tmp)
                else:
                    fs.pipe_file(tmp, data)
                fs.mv(tmp, path.path)
            finally:
                if fs.exists(tmp):
                    fs.rm_file(tmp)
        elif source is not None:
            fs.put_file(str(source), path.path)
        else:
            fs.pipe_file(path.path, data)
        fs.invalidate_cache(path.path)

    try:
        _bounded("write", uri, timeout, put)
    except FileNotFoundError as exc:
        raise StagingError(
            f"Cannot write {uri}: the bucket, container or folder does not exist ({exc}). Fix: create it, "
            f"or point {URI_SETTING} at an existing one", uri=uri) from exc


def _upload_bundle(fs: AbstractFileSystem, bundle: CodeBundle, path: ObjectStoragePath, timeout: float) -> bool:
    """Upload the bundle unless an object of its name and size is there; whether it uploaded."""
    existing = _size(fs, path, timeout)
    if existing == bundle.size:
        log.debug("Staging: bundle %s already in the store", _uri(path))
        return False
    if existing is not None:
        log.warning("Staging: bundle %s in the store has %d bytes, not %d: uploading it again",
                    _uri(path), existing, bundle.size)
    _write(fs, path, b"", timeout + bundle.size / _TRANSFER_BYTES_PER_S, source=bundle.path)
    return True


__all__ = [
    "CONN_SETTING",
    "STAGING_FORMAT_VERSION",
    "URI_SETTING",
    "BundleIntegrityError",
    "StagedTask",
    "StagingError",
    "UnsafeStagedBundleError",
    "cleanup_run",
    "error_from_exception",
    "fetch_bundle",
    "load_payload",
    "load_spec",
    "read_outcome",
    "run_key_for",
    "stage",
    "staging_base",
    "validate_run_key",
    "write_error",
    "write_result",
]
