"""The staging store: bounded object-store I/O through Airflow's ``ObjectStoragePath``, and its credentials check.

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
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath
    from fsspec import AbstractFileSystem

URI_SETTING = "[flyte] staging_uri (AIRFLOW__FLYTE__STAGING_URI)"
CONN_SETTING = "[flyte] staging_conn_id (AIRFLOW__FLYTE__STAGING_CONN_ID)"
DEFAULT_TIMEOUT = 30.0

#: Bundle transfers may take ``timeout`` plus one second per this many bytes.
TRANSFER_BYTES_PER_S = 1024 * 1024
S3_PROTOCOLS = frozenset({"s3", "s3a", "s3n"})
#: Stores where a single PUT is atomic and "folders" need not be created.
OBJECT_STORES = S3_PROTOCOLS | {"gs", "gcs", "abfs", "abfss", "az", "adl", "oss", "r2"}
LOCAL_PROTOCOLS = frozenset({"file", "local"})

_T = TypeVar("_T")


class StagingError(FlyteEngineError):
    """The staging store could not be reached, or what is staged there is missing or invalid.

    :param uri: the object or prefix concerned.
    """

    def __init__(self, message: str, *, uri: str | None = None) -> None:
        self.uri = uri
        super().__init__(message)


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
    if scheme not in LOCAL_PROTOCOLS and not path.bucket:
        raise FlyteConfigError(field, uri, "the URI names no bucket or container",
                               "use e.g. s3://my-bucket/airflow-flyte")
    return path


def check_timeout(timeout: float) -> None:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise FlyteConfigError("staging timeout", timeout, "not a positive number of seconds", "use e.g. 30")


def uri_of(path: ObjectStoragePath) -> str:
    """The path as a URI without credentials or ``conn_id@`` (which ``str()`` would include)."""
    protocol = path.protocol or "file"
    if protocol in LOCAL_PROTOCOLS:
        return "file://" + path.path
    return f"{protocol}://{path.path}"


def path_of(uri: str, conn_id: str | None, field: str) -> ObjectStoragePath:
    """``uri`` (read from a spec or given by a caller named ``field``) as a path of the store."""
    if not isinstance(uri, str) or not uri:
        raise StagingError(f"{field}: no URI (got {uri!r}). Fix: stage the task again", uri=None)
    return staging_base(uri, conn_id)


def resolve_base(base: ObjectStoragePath | str | None, conn_id: str | None) -> ObjectStoragePath:
    if base is None:
        return staging_base(None, conn_id)
    if isinstance(base, str):
        return staging_base(base, conn_id)
    if conn_id is not None and conn_id != base.conn_id:
        return staging_base(uri_of(base), conn_id)
    return base


# -- bounded operations -------------------------------------------------------------------


def bounded(what: str, uri: str, timeout: float, fn: Callable[[], _T]) -> _T:
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


def filesystem(path: ObjectStoragePath, timeout: float) -> AbstractFileSystem:
    """The Airflow-attached filesystem of ``path`` (resolving the connection is bounded too)."""
    uri = uri_of(path)
    fs: AbstractFileSystem = bounded("connect", uri, timeout, lambda: path.fs)
    if (path.protocol or "file") in S3_PROTOCOLS and getattr(fs, "anon", False):
        # The Amazon provider falls back to anonymous access when it finds no credentials;
        # staging must write, and an anonymous request would go to the real endpoint.
        conn = f"connection {path.conn_id!r}" if path.conn_id else "no connection"
        raise _no_credentials(uri, f"{conn} configured, no AWS credentials in the environment")
    return fs


def exists(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> bool:
    """Whether the object exists (``fs.exists`` would turn a connection error into ``False``)."""
    return size(fs, path, timeout) is not None


def size(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> int | None:
    """The object's size, or ``None`` if there is none."""

    def info() -> int | None:
        fs.invalidate_cache(path.path)
        try:
            found = fs.info(path.path)
        except FileNotFoundError:
            return None
        return int(found["size"]) if found.get("type", "file") == "file" else None

    return bounded("check", uri_of(path), timeout, info)


def read(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float, *, missing: str) -> bytes:
    """The object's bytes; :class:`StagingError` with the message ``missing`` if there is none."""
    uri = uri_of(path)
    try:
        return bytes(bounded("read", uri, timeout, lambda: fs.cat_file(path.path)))
    except FileNotFoundError as exc:
        raise StagingError(missing, uri=uri) from exc


def remove(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> None:
    def remove_file() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(path.path)
        fs.invalidate_cache(path.path)

    bounded("remove", uri_of(path), timeout, remove_file)


def remove_tree(fs: AbstractFileSystem, path: ObjectStoragePath, timeout: float) -> None:
    """Remove the folder ``path`` and all it holds; a missing one is fine."""

    def remove_all() -> None:
        with contextlib.suppress(FileNotFoundError):
            fs.rm(path.path, recursive=True)
        fs.invalidate_cache(path.path)

    bounded("remove", uri_of(path), timeout, remove_all)


def write(fs: AbstractFileSystem, path: ObjectStoragePath, data: bytes, timeout: float,
          *, source: Path | None = None) -> None:
    """Write ``data`` (or the file ``source``) to ``path``, atomically where the store allows.

    Object stores replace an object in one PUT; a local folder gets a temporary file that is
    renamed into place, so a reader never sees a partial file.
    """
    uri = uri_of(path)
    protocol = path.protocol or "file"

    def put() -> None:
        parent = path.path.rsplit("/", 1)[0]
        if protocol not in OBJECT_STORES:
            fs.makedirs(parent, exist_ok=True)
        if protocol in LOCAL_PROTOCOLS:
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
        bounded("write", uri, timeout, put)
    except FileNotFoundError as exc:
        raise StagingError(
            f"Cannot write {uri}: the bucket, container or folder does not exist ({exc}). Fix: create it, "
            f"or point {URI_SETTING} at an existing one", uri=uri) from exc


__all__ = [
    "CONN_SETTING",
    "DEFAULT_TIMEOUT",
    "URI_SETTING",
    "StagingError",
    "bounded",
    "check_timeout",
    "exists",
    "filesystem",
    "path_of",
    "read",
    "remove",
    "remove_tree",
    "resolve_base",
    "size",
    "staging_base",
    "uri_of",
    "write",
]
