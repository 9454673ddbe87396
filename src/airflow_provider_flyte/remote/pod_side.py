"""The pod's side of a remote run: read the staged spec, bundle and payload; write the result or the error.

The in-cluster entrypoint (:mod:`airflow_provider_flyte.runtime.entrypoint`) calls these; where
each object lives is :mod:`~airflow_provider_flyte.remote.layout`. Every call is bounded in time
(:mod:`~airflow_provider_flyte.remote.store`).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import traceback as traceback_module
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.bundle.build import FORMATS
from airflow_provider_flyte.bundle.extract import (
    BundleDigestError,
    BundleError,
    UnsafeBundleError,
    extract_bundle,
)
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.remote import store
from airflow_provider_flyte.remote.layout import (
    STAGING_FORMAT_VERSION,
    section_conn_id,
    staging_section,
)
from airflow_provider_flyte.remote.store import (
    DEFAULT_TIMEOUT,
    TRANSFER_BYTES_PER_S,
    URI_SETTING,
    StagingError,
    check_timeout,
    path_of,
    uri_of,
)


class BundleIntegrityError(StagingError, BundleDigestError):
    """The staged code bundle does not match the digest recorded in the spec (tampered or corrupt)."""


class UnsafeStagedBundleError(StagingError, UnsafeBundleError):
    """The staged code bundle holds an entry that would be written outside the target."""



# -- pod side -------------------------------------------------------------------------------


def load_spec(spec_uri: str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> dict[str, Any]:
    """Read a staged ``spec.json`` and check its ``staging`` section.

    :param spec_uri: ``<base>/runs/<run_key>/spec.json``.
    :param conn_id: the store's connection; default ``[flyte] staging_conn_id``.
    :raises StagingError: missing or unreadable spec, or one written in a newer staging format.
    """
    check_timeout(timeout)
    path = path_of(spec_uri, conn_id, "load_spec(spec_uri=...)")
    fs = store.filesystem(path, timeout)
    uri = uri_of(path)
    raw = store.read(fs, path, timeout, missing=(
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
    check_timeout(timeout)
    section = staging_section(spec)
    info = section.get("bundle")
    if info is None:
        return None
    path = path_of(info["uri"], section_conn_id(section, conn_id), "spec staging.bundle.uri")
    uri = uri_of(path)
    fs = store.filesystem(path, timeout)
    target = Path(dest).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.download-",
                                    suffix=FORMATS.get(info.get("fmt", ""), ""))
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        deadline = timeout + int(info.get("size") or 0) / TRANSFER_BYTES_PER_S
        try:
            store.bounded("download", uri, deadline, lambda: fs.get_file(path.path, tmp_name))
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
    check_timeout(timeout)
    section = staging_section(spec)
    info = section["payload"]
    path = path_of(info["uri"], section_conn_id(section, conn_id), "spec staging.payload.uri")
    uri = uri_of(path)
    fs = store.filesystem(path, timeout)
    data = store.read(fs, path, timeout, missing=(
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
    check_timeout(timeout)
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise FlyteConfigError("write_result(value=...)", type(value).__name__, "the result is not bytes",
                               "pickle the return value first")
    section = staging_section(spec)
    path = path_of(section["result_uri"], section_conn_id(section, conn_id), "spec staging.result_uri")
    store.write(store.filesystem(path, timeout), path, bytes(value), timeout)
    return uri_of(path)


def write_error(spec: Mapping[str, Any], error: Mapping[str, Any], *, conn_id: str | None = None,
                timeout: float = DEFAULT_TIMEOUT) -> str:
    """Write the task's error to ``error.json``; returns its URI.

    :param error: ``{"type", "message", "traceback"}`` (missing ones are written as ``""``;
        more keys are kept); :func:`error_from_exception` builds one.
    """
    check_timeout(timeout)
    document = {key: "" for key in ("type", "message", "traceback")}
    document.update({str(k): v for k, v in error.items()})
    try:
        data = json.dumps(document, indent=1, sort_keys=True, default=repr).encode("utf-8")
    except ValueError as exc:
        raise FlyteConfigError("write_error(error=...)", sorted(document), f"not JSON-serialisable ({exc})",
                               "pass strings for type, message and traceback") from exc
    section = staging_section(spec)
    path = path_of(section["error_uri"], section_conn_id(section, conn_id), "spec staging.error_uri")
    store.write(store.filesystem(path, timeout), path, data, timeout)
    return uri_of(path)


def spec_exists(spec_uri: str, *, conn_id: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Whether the run's ``spec.json`` is still in the store (the worker removes a killed or finished run).

    The entrypoint asks before it writes an outcome, so that a pod stopped by its job's deletion
    does not put a run back that the worker has just removed.
    """
    check_timeout(timeout)
    path = path_of(spec_uri, conn_id, "spec_exists(spec_uri=...)")
    return store.exists(store.filesystem(path, timeout), path, timeout)


def error_from_exception(exc: BaseException) -> dict[str, Any]:
    """``{"type", "message", "traceback"}`` for :func:`write_error`."""
    kind = type(exc)
    return {
        "type": f"{kind.__module__}.{kind.__qualname__}",
        "message": str(exc),
        "traceback": "".join(traceback_module.format_exception(kind, exc, exc.__traceback__)),
    }


__all__ = [
    "BundleIntegrityError",
    "UnsafeStagedBundleError",
    "error_from_exception",
    "fetch_bundle",
    "load_payload",
    "load_spec",
    "spec_exists",
    "write_error",
    "write_result",
]
