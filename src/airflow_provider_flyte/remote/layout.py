"""Where a remote run lives in the staging store: names, run keys, :class:`StagedTask`.

A task that runs in a Kubernetes pod started by an engine operator cannot read the Airflow
worker's disk. The worker *stages* what the pod needs under ``[flyte] staging_uri``; the
in-cluster entrypoint reads it back and writes the outcome next to the spec; the worker
reads the outcome and cleans up::

    <base>/bundles/<digest>.zip|.tar.gz     content-addressed, shared by all runs
    <base>/runs/<run_key>/spec.json         the task spec plus a "staging" section
    <base>/runs/<run_key>/payload.pkl       the call payload (opaque bytes)
    <base>/runs/<run_key>/result.pkl        written by the pod on success (opaque bytes)
    <base>/runs/<run_key>/error.json        written by the pod on failure

The worker's side is :mod:`~airflow_provider_flyte.remote.staging`, the pod's
:mod:`~airflow_provider_flyte.remote.pod_side`, the store itself :mod:`~airflow_provider_flyte.remote.store`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.remote.store import StagingError, staging_base

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

#: Version of the ``staging`` section of ``spec.json``; a reader refuses a newer one.
STAGING_FORMAT_VERSION: int = 1

SPEC_NAME = "spec.json"
PAYLOAD_NAME = "payload.pkl"
RESULT_NAME = "result.pkl"
ERROR_NAME = "error.json"
BUNDLES_DIR = "bundles"
RUNS_DIR = "runs"

#: Characters a run key may hold: safe in S3/GCS object keys and in local file names.
RUN_KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+@,~-]*")
RUN_KEY_MAX = 200


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


def run_path(staged: StagedTask | str, conn_id: str | None) -> ObjectStoragePath:
    """The run's folder: from a :class:`StagedTask`, or the URI of its ``spec.json`` or folder
    (which must be ``<base>/runs/<valid run key>``, so that nothing else is ever deleted)."""
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


def staging_section(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ``staging`` section of a loaded ``spec.json``."""
    section = spec.get("staging") if isinstance(spec, Mapping) else None
    if not isinstance(section, Mapping):
        raise StagingError("The task spec has no 'staging' section. Fix: pass the dict load_spec() returned")
    return section


def section_conn_id(section: Mapping[str, Any], conn_id: str | None) -> str | None:
    """The store's connection: ``conn_id`` if given, else the one the spec was staged with."""
    value = conn_id if conn_id is not None else section.get("conn_id")
    return value if isinstance(value, str) and value else None


__all__ = [
    "STAGING_FORMAT_VERSION",
    "StagedTask",
    "run_key_for",
    "run_path",
    "section_conn_id",
    "staging_section",
    "validate_run_key",
]
