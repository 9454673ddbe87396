"""Staging against real stores: moto's S3 server on loopback and a local folder (file://).

No store is mocked: S3 requests go over HTTP to ``moto_server`` (started once per session by
``tests/support/s3_server.py``), through Airflow's ``ObjectStoragePath``, the Amazon provider and
s3fs. Requests are counted server-side by moto's recorder. Tests inspect and damage the
stored objects with plain boto3 / pathlib, not with the code under test.
"""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import time
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cloudpickle
import pytest

from airflow_provider_flyte.bundle import BundleDigestError, build_bundle
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.remote import layout as staging
from airflow_provider_flyte.remote.layout import STAGING_FORMAT_VERSION, StagedTask, run_key_for
from airflow_provider_flyte.remote.pod_side import (
    BundleIntegrityError,
    error_from_exception,
    fetch_bundle,
    load_payload,
    load_spec,
    write_error,
    write_result,
)
from airflow_provider_flyte.remote.staging import cleanup_run, read_outcome, stage
from airflow_provider_flyte.remote.store import StagingError, staging_base
from tests.support.s3_server import SECRET_KEY, MotoServer, closed_port, no_aws_credentials_env, silent_port

BUCKET = "flyte-staging"
MOTO_CONN = "flyte_staging_moto"
UNREACHABLE = r"did not answer within {} s|is unreachable \(.*gave up after \d"
DEAD_CONN = "flyte_staging_dead"  # endpoint on a closed loopback port, botocore's default retries
DEAD_FAST_CONN = "flyte_staging_dead_fast"  # same, with config_kwargs: one attempt, 1 s connect timeout
NOCRED_CONN = "flyte_staging_nocred"  # an aws connection without login/password
SILENT_CONN = "flyte_staging_silent"  # endpoint that accepts connections and never answers

SPEC = {"version": 1, "task": {"dag_id": "d", "task_id": "t"}, "config": {"executors": 2}, "env_vars": {"A": "1"}}


# -- fixtures -------------------------------------------------------------------------------


def _scrub_aws_env() -> dict[str, str | None]:
    """Remove AWS credentials and probes from this process's environment; returns what to restore."""
    saved: dict[str, str | None] = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    for key in saved:
        del os.environ[key]
    for key, value in no_aws_credentials_env().items():
        saved.setdefault(key, None)
        os.environ[key] = value
    return saved


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """moto's S3 server on 127.0.0.1 and the Airflow connections the tests use (as env vars)."""
    saved = _scrub_aws_env()
    server = MotoServer(tmp_path_factory.mktemp("moto")).start()
    port, holder = closed_port()
    dead = f"http://127.0.0.1:{port}"
    quiet_port, quiet = silent_port()
    conns = {
        MOTO_CONN: server.connection_json(),
        DEAD_CONN: server.connection_json(endpoint=dead),
        DEAD_FAST_CONN: server.connection_json(
            endpoint=dead, config_kwargs={"connect_timeout": 1, "retries": {"max_attempts": 1}}),
        SILENT_CONN: server.connection_json(endpoint=f"http://127.0.0.1:{quiet_port}"),
        NOCRED_CONN: json.dumps({"conn_type": "aws", "extra": {"endpoint_url": server.endpoint,
                                                               "region_name": "us-east-1"}}),
    }
    env_keys = [f"AIRFLOW_CONN_{conn.upper()}" for conn in conns]
    for key, (_, value) in zip(env_keys, conns.items(), strict=True):
        os.environ[key] = value
    server.client().create_bucket(Bucket=BUCKET)
    try:
        yield server
    finally:
        server.stop()
        holder.close()
        quiet.close()
        for key in env_keys:
            os.environ.pop(key, None)
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture(autouse=True)
def _no_staging_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__FLYTE__STAGING_URI", raising=False)
    monkeypatch.delenv("AIRFLOW__FLYTE__STAGING_CONN_ID", raising=False)


@dataclass
class Store:
    """A staging store as the tests see it: the base URI, its connection, and raw object access."""

    kind: str
    base: str
    conn_id: str | None
    moto: MotoServer | None = None
    root: Path | None = None

    def _key(self, uri: str) -> str:
        prefix = f"s3://{BUCKET}/"
        assert uri.startswith(prefix), uri
        return uri[len(prefix):]

    def _file(self, uri: str) -> Path:
        assert uri.startswith("file://"), uri
        return Path(uri[len("file://"):])

    def read(self, uri: str) -> bytes:
        if self.moto:
            return self.moto.client().get_object(Bucket=BUCKET, Key=self._key(uri))["Body"].read()
        return self._file(uri).read_bytes()

    def write(self, uri: str, data: bytes) -> None:
        if self.moto:
            self.moto.client().put_object(Bucket=BUCKET, Key=self._key(uri), Body=data)
        else:
            self._file(uri).write_bytes(data)

    def delete(self, uri: str) -> None:
        if self.moto:
            self.moto.client().delete_object(Bucket=BUCKET, Key=self._key(uri))
        else:
            self._file(uri).unlink()

    def exists(self, uri: str) -> bool:
        if self.moto:
            listing = self.moto.client().list_objects_v2(Bucket=BUCKET, Prefix=self._key(uri))
            return any(o["Key"] == self._key(uri) for o in listing.get("Contents", []))
        return self._file(uri).exists()

    def keys(self) -> list[str]:
        """Every object under the base, relative to it."""
        if self.moto:
            prefix = self._key(self.base) + "/"
            listing = self.moto.client().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
            return sorted(o["Key"][len(prefix):] for o in listing.get("Contents", []))
        assert self.root is not None
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())


@pytest.fixture(params=["s3", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "s3":
        server: MotoServer = request.getfixturevalue("moto")
        prefix = f"tests/{uuid.uuid4().hex[:12]}"
        return Store("s3", f"s3://{BUCKET}/{prefix}", MOTO_CONN, moto=server)
    root = tmp_path / "staging"
    return Store("file", f"file://{root}", None, root=root)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A small project: a module and a helper package."""
    root = tmp_path / "project"
    (root / "helpers").mkdir(parents=True)
    (root / "pipeline.py").write_text("from helpers.util import double\n\ndef run(x):\n    return double(x) + 1\n")
    (root / "helpers" / "__init__.py").write_text("")
    (root / "helpers" / "util.py").write_text("def double(x):\n    return 2 * x\n")
    (root / "helpers" / "data.json").write_text(json.dumps({"k": list(range(50))}))
    return root


def _payload() -> bytes:
    def call(a: int, b: int = 0) -> int:
        return a * 10 + b

    return bytes(cloudpickle.dumps((call, (4,), {"b": 2})))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- the round trip -------------------------------------------------------------------------


def test_stage_roundtrip(store: Store, project: Path, tmp_path: Path) -> None:
    bundle = build_bundle(project)
    payload = _payload()
    staged = stage(SPEC, payload, bundle, run_key="d__t__run1__try1", base=store.base, conn_id=store.conn_id)

    assert isinstance(staged, StagedTask)
    assert staged.base == store.base
    assert staged.spec_uri == f"{store.base}/runs/d__t__run1__try1/spec.json"
    assert staged.result_uri == f"{store.base}/runs/d__t__run1__try1/result.pkl"
    assert staged.error_uri == f"{store.base}/runs/d__t__run1__try1/error.json"
    assert staged.bundle_uri == f"{store.base}/bundles/{bundle.digest}.zip"
    assert staged.uploaded_bundle is True
    assert store.keys() == [
        f"bundles/{bundle.digest}.zip", "runs/d__t__run1__try1/payload.pkl", "runs/d__t__run1__try1/spec.json",
    ]
    assert store.read(staged.bundle_uri) == bundle.path.read_bytes()

    # spec.json: the spec plus the staging section; no credentials
    raw_spec = store.read(staged.spec_uri)
    assert SECRET_KEY.encode() not in raw_spec and b"password" not in raw_spec
    spec = load_spec(staged.spec_uri, conn_id=store.conn_id)
    assert {k: v for k, v in spec.items() if k != "staging"} == SPEC
    section = spec["staging"]
    assert section["format_version"] == STAGING_FORMAT_VERSION == 1
    assert section["bundle"] == {"uri": staged.bundle_uri, "digest": bundle.digest, "fmt": "zip", "size": bundle.size}
    assert section["payload"]["uri"] == staged.payload_uri
    assert section["result_uri"] == staged.result_uri and section["error_uri"] == staged.error_uri
    assert section["conn_id"] == store.conn_id

    # pod side: the bundle, extracted, equals the project; the payload round-trips
    dest = tmp_path / "pod" / "code"
    assert fetch_bundle(spec, dest) == dest
    assert _files(dest) == _files(project)
    assert not [p for p in dest.parent.iterdir() if p.name != "code"], "the download was not removed"
    assert load_payload(spec) == payload
    fn, args, kwargs = cloudpickle.loads(load_payload(spec))
    assert fn(*args, **kwargs) == 42

    # outcome: nothing yet, then the result
    assert read_outcome(staged) is None
    assert write_result(spec, b"\x80result-bytes") == staged.result_uri
    assert read_outcome(staged) == ("result", b"\x80result-bytes")
    assert read_outcome(staged.spec_uri, conn_id=store.conn_id) == ("result", b"\x80result-bytes")

    # an error (from a second run of the same task) is read back as a dict
    staged2 = stage(SPEC, payload, bundle, run_key="d__t__run1__try2", base=store.base, conn_id=store.conn_id)
    assert staged2.uploaded_bundle is False
    spec2 = load_spec(staged2.spec_uri, conn_id=store.conn_id)
    try:
        raise ZeroDivisionError("division by zero in the task")
    except ZeroDivisionError as exc:
        error = error_from_exception(exc)
    write_error(spec2, error)
    kind, value = read_outcome(staged2) or ("", b"")
    assert kind == "error"
    assert isinstance(value, dict)
    assert value["type"] == "builtins.ZeroDivisionError"
    assert value["message"] == "division by zero in the task"
    assert "Traceback" in value["traceback"] and "raise ZeroDivisionError" in value["traceback"]

    # cleanup removes the runs, the shared bundle stays
    cleanup_run(staged)
    cleanup_run(staged2.spec_uri, conn_id=store.conn_id)
    cleanup_run(staged2)  # already gone: fine
    assert store.keys() == [f"bundles/{bundle.digest}.zip"]
    assert read_outcome(staged) is None


def test_stage_tar_gz_and_no_bundle(store: Store, project: Path, tmp_path: Path) -> None:
    bundle = build_bundle(project, fmt="tar.gz")
    staged = stage(SPEC, b"p", bundle, run_key="targz", base=store.base, conn_id=store.conn_id)
    assert staged.bundle_uri == f"{store.base}/bundles/{bundle.digest}.tar.gz"
    spec = load_spec(staged.spec_uri, conn_id=store.conn_id)
    assert _files(fetch_bundle(spec, tmp_path / "code") or tmp_path) == _files(project)

    plain = stage(SPEC, b"p", None, run_key="nobundle", base=store.base, conn_id=store.conn_id)
    assert plain.bundle_uri is None and plain.uploaded_bundle is False
    spec = load_spec(plain.spec_uri, conn_id=store.conn_id)
    assert spec["staging"]["bundle"] is None
    assert fetch_bundle(spec, tmp_path / "none") is None


def test_restage_removes_stale_outcome(store: Store, project: Path) -> None:
    staged = stage(SPEC, b"p", None, run_key="reused", base=store.base, conn_id=store.conn_id)
    write_error(load_spec(staged.spec_uri, conn_id=store.conn_id), {"type": "X", "message": "old", "traceback": ""})
    assert read_outcome(staged) is not None
    stage(SPEC, b"p", None, run_key="reused", base=store.base, conn_id=store.conn_id)
    assert read_outcome(staged) is None


# -- content addressing ---------------------------------------------------------------------


def test_unchanged_tree_uploads_no_bundle(moto: MotoServer, project: Path) -> None:
    base = f"s3://{BUCKET}/tests/{uuid.uuid4().hex[:12]}"
    first = build_bundle(project)
    bundle_path = f"/{BUCKET}/{base.split('/', 3)[3]}/bundles/{first.digest}.zip"

    moto.start_recording()
    staged1 = stage(SPEC, b"payload-1", first, run_key="run1", base=base, conn_id=MOTO_CONN)
    puts1 = [p for m, p in moto.requests() if m == "PUT"]

    second = build_bundle(project)  # unchanged tree: the same bundle
    assert second.digest == first.digest
    moto.start_recording()
    staged2 = stage(SPEC, b"payload-2", second, run_key="run2", base=base, conn_id=MOTO_CONN)
    requests2 = moto.requests()
    puts2 = [p for m, p in requests2 if m == "PUT"]
    moto.stop_recording()

    assert puts1.count(bundle_path) == 1, puts1
    assert staged1.uploaded_bundle is True
    assert puts2.count(bundle_path) == 0, puts2
    assert staged2.uploaded_bundle is False
    # the recorder did see the second stage: its payload and spec were PUT, the bundle only checked
    assert sorted(puts2) == sorted(p for p in puts2 if "/runs/run2/" in p) and len(puts2) == 2, puts2
    assert ("HEAD", bundle_path) in requests2

    # a changed tree is a new bundle, uploaded once
    (project / "helpers" / "util.py").write_text("def double(x):\n    return x + x\n")
    third = build_bundle(project)
    assert third.digest != first.digest
    moto.start_recording()
    staged3 = stage(SPEC, b"payload-3", third, run_key="run3", base=base, conn_id=MOTO_CONN)
    puts3 = [p for m, p in moto.requests() if m == "PUT"]
    moto.stop_recording()
    assert staged3.uploaded_bundle is True
    assert [p for p in puts3 if "/bundles/" in p] == [bundle_path.replace(first.digest, third.digest)]


def test_unchanged_tree_file_store(tmp_path: Path, project: Path) -> None:
    base = f"file://{tmp_path / 'staging'}"
    bundle = build_bundle(project)
    assert stage(SPEC, b"p", bundle, run_key="a", base=base).uploaded_bundle is True
    stored = tmp_path / "staging" / "bundles" / f"{bundle.digest}.zip"
    before = stored.stat().st_mtime_ns, stored.stat().st_ino
    assert stage(SPEC, b"p", build_bundle(project), run_key="b", base=base).uploaded_bundle is False
    assert (stored.stat().st_mtime_ns, stored.stat().st_ino) == before
    # a truncated object of the same name is replaced
    stored.write_bytes(b"partial")
    assert stage(SPEC, b"p", bundle, run_key="c", base=base).uploaded_bundle is True
    assert stored.read_bytes() == bundle.path.read_bytes()


# -- bad input and broken stores -------------------------------------------------------------


def test_missing_bundle(store: Store, project: Path, tmp_path: Path) -> None:
    staged = stage(SPEC, b"p", build_bundle(project), run_key="missing", base=store.base, conn_id=store.conn_id)
    spec = load_spec(staged.spec_uri, conn_id=store.conn_id)
    assert staged.bundle_uri is not None
    store.delete(staged.bundle_uri)
    with pytest.raises(StagingError, match="is missing from the staging store") as info:
        fetch_bundle(spec, tmp_path / "code")
    assert staged.bundle_uri in str(info.value)
    assert "run the task again" in str(info.value)
    assert info.value.uri == staged.bundle_uri
    assert not (tmp_path / "code").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".code")] == []


def test_tampered_bundle(store: Store, project: Path, tmp_path: Path) -> None:
    bundle = build_bundle(project)
    staged = stage(SPEC, b"p", bundle, run_key="tampered", base=store.base, conn_id=store.conn_id)
    spec = load_spec(staged.spec_uri, conn_id=store.conn_id)
    assert staged.bundle_uri is not None

    # a valid archive with different content under the same name
    other = tmp_path / "other"
    other.mkdir()
    for rel, data in _files(project).items():
        (other / rel).parent.mkdir(parents=True, exist_ok=True)
        (other / rel).write_bytes(data)
    (other / "helpers" / "util.py").write_text("import os\nos.system('curl evil')\n")
    store.write(staged.bundle_uri, build_bundle(other).path.read_bytes())
    with pytest.raises(BundleDigestError, match="does not match the digest") as info:
        fetch_bundle(spec, tmp_path / "code1")
    assert isinstance(info.value, BundleIntegrityError) and isinstance(info.value, StagingError)
    assert staged.bundle_uri in str(info.value) and bundle.digest in str(info.value)
    assert not (tmp_path / "code1").exists()

    # a flipped byte inside a member's compressed data (zip's CRC check fails), and a truncated
    # archive: both no longer readable, the same error
    original = bundle.path.read_bytes()
    with zipfile.ZipFile(bundle.path) as zf:
        member = next(i for i in zf.infolist() if i.filename == "helpers/util.py")
    name_len, extra_len = struct.unpack("<HH", original[member.header_offset + 26: member.header_offset + 30])
    data_at = member.header_offset + 30 + name_len + extra_len
    flipped = bytearray(original)
    flipped[data_at + member.compress_size // 2] ^= 0xFF
    for n, damaged in enumerate((bytes(flipped), original[: len(original) // 2])):
        store.write(staged.bundle_uri, damaged)
        with pytest.raises(BundleIntegrityError, match="modified or corrupted") as info:
            fetch_bundle(spec, tmp_path / f"code{n + 2}")
        assert isinstance(info.value, BundleDigestError)
        assert not (tmp_path / f"code{n + 2}").exists()


def test_tampered_payload(store: Store) -> None:
    staged = stage(SPEC, b"payload", None, run_key="payload", base=store.base, conn_id=store.conn_id)
    spec = load_spec(staged.spec_uri, conn_id=store.conn_id)
    store.write(staged.payload_uri, b"PAYLOAD")
    with pytest.raises(StagingError, match="call payload .* has sha256 .* not the .* recorded"):
        load_payload(spec)
    store.delete(staged.payload_uri)
    with pytest.raises(StagingError, match="No call payload at"):
        load_payload(spec)


def test_spec_from_newer_format(store: Store) -> None:
    staged = stage(SPEC, b"p", None, run_key="newer", base=store.base, conn_id=store.conn_id)
    doc = json.loads(store.read(staged.spec_uri))
    doc["staging"]["format_version"] = STAGING_FORMAT_VERSION + 1
    store.write(staged.spec_uri, json.dumps(doc).encode())
    with pytest.raises(StagingError) as info:
        load_spec(staged.spec_uri, conn_id=store.conn_id)
    assert (
        f"written by a newer airflow-provider-flyte (format {STAGING_FORMAT_VERSION + 1}, this one reads up "
        f"to {STAGING_FORMAT_VERSION}): upgrade the package in the image"
    ) in str(info.value)
    assert staged.spec_uri in str(info.value)


def test_missing_and_foreign_spec(store: Store) -> None:
    uri = f"{store.base}/runs/never/spec.json"
    with pytest.raises(StagingError, match="No task spec at") as info:
        load_spec(uri, conn_id=store.conn_id)
    assert uri in str(info.value)
    staged = stage(SPEC, b"p", None, run_key="foreign", base=store.base, conn_id=store.conn_id)
    store.write(staged.spec_uri, b'{"task": {}}')
    with pytest.raises(StagingError, match="has no 'staging' section"):
        load_spec(staged.spec_uri, conn_id=store.conn_id)
    store.write(staged.spec_uri, b'{"staging": {"format_version": 1, "bundle": null}}')
    with pytest.raises(StagingError, match="incomplete 'staging' section .*payload, result_uri, error_uri"):
        load_spec(staged.spec_uri, conn_id=store.conn_id)
    store.write(staged.spec_uri, b"{not json")
    with pytest.raises(StagingError, match="is not valid JSON"):
        load_spec(staged.spec_uri, conn_id=store.conn_id)


def test_no_credentials(moto: MotoServer) -> None:
    assert not [k for k in os.environ if k.startswith("AWS_ACCESS") or k.startswith("AWS_SECRET")]
    moto.start_recording()
    # no connection; a connection without login/password; a connection id nobody defined
    # (the Amazon provider falls back to the environment, then to anonymous access)
    for conn_id in (None, NOCRED_CONN, "flyte_staging_undefined"):
        started = time.monotonic()
        with pytest.raises(StagingError) as info:
            stage(SPEC, b"p", None, run_key="nocred", base=f"s3://{BUCKET}/nocred", conn_id=conn_id)
        message = str(info.value)
        assert "No credentials for the staging store s3://flyte-staging/nocred" in message
        assert "[flyte] staging_conn_id" in message and "AIRFLOW__FLYTE__STAGING_CONN_ID" in message
        assert time.monotonic() - started < 10
    with pytest.raises(StagingError, match="No credentials"):
        load_spec(f"s3://{BUCKET}/nocred/runs/x/spec.json")
    assert moto.requests() == [], "an anonymous request was sent"
    moto.stop_recording()


def test_unreachable_store_is_bounded(moto: MotoServer) -> None:
    base = f"s3://{BUCKET}/dead"
    started = time.monotonic()
    with pytest.raises(StagingError) as info:
        stage(SPEC, b"p", None, run_key="dead", base=base, conn_id=DEAD_CONN, timeout=3)
    elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed
    # botocore's own connect retries may give up before our bound does: either message is right
    assert re.search(UNREACHABLE.format(3), str(info.value)), str(info.value)
    assert f"{base}/runs/dead/" in str(info.value)
    assert info.value.uri is not None and info.value.uri.startswith(base)

    started = time.monotonic()
    with pytest.raises(StagingError, match=UNREACHABLE.format(2)) as info:
        load_spec(f"{base}/runs/dead/spec.json", conn_id=DEAD_CONN, timeout=2)
    assert time.monotonic() - started < 8
    assert f"{base}/runs/dead/spec.json" in str(info.value)


def test_silent_store_is_bounded(moto: MotoServer, project: Path) -> None:
    """A store that accepts the connection and never answers (botocore would wait 60 s per attempt)."""
    base = f"s3://{BUCKET}/silent"
    started = time.monotonic()
    with pytest.raises(StagingError, match=UNREACHABLE.format(2)) as info:
        stage(SPEC, b"p", build_bundle(project), run_key="silent", base=base, conn_id=SILENT_CONN, timeout=2)
    assert time.monotonic() - started < 8
    assert f"{base}/bundles/" in str(info.value)
    with pytest.raises(StagingError, match="did not answer within 1 s"):
        read_outcome(f"{base}/runs/silent/spec.json", conn_id=SILENT_CONN, timeout=1)


def test_unreachable_store_with_fast_failing_connection(moto: MotoServer) -> None:
    """A connection whose botocore config gives up early: the error is botocore's, named as unreachable."""
    base = f"s3://{BUCKET}/dead-fast"
    started = time.monotonic()
    with pytest.raises(StagingError, match="Staging store is unreachable") as info:
        stage(SPEC, b"p", None, run_key="dead", base=base, conn_id=DEAD_FAST_CONN, timeout=20)
    assert time.monotonic() - started < 10
    assert "EndpointConnectionError" in str(info.value) and base in str(info.value)


@pytest.mark.parametrize(
    ("run_key", "problem"),
    [
        ("", "empty"),
        ("a/b", "path separator"),
        ("a\\b", "path separator"),
        ("..", "contains '..'"),
        ("x..y", "contains '..'"),
        (".hidden", "characters or a length"),
        ("a b", "characters or a length"),
        ("k" * 300, "characters or a length"),
    ],
)
def test_bad_run_key(tmp_path: Path, run_key: str, problem: str) -> None:
    with pytest.raises(FlyteConfigError, match="stage\\(run_key=...\\)") as info:
        stage(SPEC, b"p", None, run_key=run_key, base=f"file://{tmp_path}")
    assert problem in str(info.value)
    assert "run_key_for(" in str(info.value)
    assert not list(tmp_path.iterdir()), "nothing may be written for a bad key"


def test_cleanup_refuses_what_is_not_a_run(tmp_path: Path) -> None:
    base = f"file://{tmp_path}"
    stage(SPEC, b"p", None, run_key="keep", base=base)
    for uri in (base, f"{base}/runs", f"{base}/bundles/x"):
        with pytest.raises((StagingError, FlyteConfigError)):
            cleanup_run(uri)
    assert (tmp_path / "runs" / "keep" / "spec.json").exists()


def test_no_staging_uri_configured() -> None:
    for call in (staging_base, lambda: stage(SPEC, b"p", None, run_key="k")):
        with pytest.raises(FlyteConfigError) as info:
            call()
        message = str(info.value)
        assert message.startswith("[flyte] staging_uri (AIRFLOW__FLYTE__STAGING_URI): no staging location")
        assert "e.g. s3://my-bucket/airflow-flyte" in message


def test_staging_uri_from_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path}/cfg/")
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_CONN_ID", "some_conn")
    base = staging_base()
    assert str(base.path) == f"{tmp_path}/cfg" and base.conn_id == "some_conn"
    staged = stage(SPEC, b"p", None, run_key="k")
    assert staged.base == f"file://{tmp_path}/cfg" and staged.conn_id == "some_conn"
    assert json.loads((tmp_path / "cfg/runs/k/spec.json").read_text())["staging"]["conn_id"] == "some_conn"
    assert staging_base("s3://b/p", "other").conn_id == "other"
    assert staging_base(str(tmp_path)).protocol == "file"


@pytest.mark.parametrize(
    ("uri", "problem"),
    [("relative/dir", "neither a URI"), ("nosuchfs://bucket/x", "no filesystem is installed"),
     ("s3://", "names no bucket")],
)
def test_bad_staging_uri(uri: str, problem: str) -> None:
    with pytest.raises(FlyteConfigError, match=problem):
        staging_base(uri)


def test_spec_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(FlyteConfigError, match="not JSON-serialisable"):
        stage({"f": object()}, b"p", None, run_key="k", base=f"file://{tmp_path}")
    with pytest.raises(FlyteConfigError, match="payload is not bytes"):
        stage(SPEC, "text", None, run_key="k", base=f"file://{tmp_path}")  # type: ignore[arg-type]
    assert not list(tmp_path.iterdir())


def test_run_key_for() -> None:
    a = run_key_for("my_dag", "extract.load", "manual__2026-12-01T22:00:00+00:00", 1)
    b = run_key_for("my_dag", "extract.load", "manual__2026-12-01T22:00:00+00:00", 1, map_index=3)
    c = run_key_for("my_dag", "extract.load", "manual__2026-12-01T22:00:00+00:00", 2)
    for key in (a, b, c):
        assert staging.validate_run_key(key) == key
    assert len({a, b, c}) == 3
    assert a.startswith("my_dag__extract.load__manual__2026-12-01T22_00_00_00_00__try1--")
    assert "map3" in b
    assert run_key_for("d", "t", "r", 1) == run_key_for("d", "t", "r", 1)
    assert len(run_key_for("d" * 250, "t", "r", 1)) <= staging.RUN_KEY_MAX


def test_abandoned_store_call_does_not_hold_up_exit(moto: MotoServer, tmp_path: Path) -> None:
    """The thread left retrying an unreachable store is a daemon: the process still exits at once."""
    script = tmp_path / "stage_dead.py"
    script.write_text(
        "import sys, time\n"
        "from airflow_provider_flyte.remote.staging import StagingError, stage\n"
        "try:\n"
        f"    stage({{}}, b'p', None, run_key='dead', base='s3://{BUCKET}/exit', conn_id='{DEAD_CONN}', timeout=1)\n"
        "except StagingError as exc:\n"
        "    print('STAGING_ERROR', exc, flush=True)\n"
        "    print('EXITING_AT', time.monotonic(), flush=True)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())
    ended = time.monotonic()
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "did not answer within 1 s" in proc.stdout
    exiting_at = float(proc.stdout.split("EXITING_AT", 1)[1].split()[0])
    # botocore keeps retrying the closed port for about 11 s in the abandoned thread
    assert ended - exiting_at < 5, proc.stdout + proc.stderr


def test_unreadable_error_file_and_busy_dest(tmp_path: Path, project: Path) -> None:
    base = f"file://{tmp_path / 'staging'}"
    staged = stage(SPEC, b"p", build_bundle(project), run_key="k", base=base)
    Path(staged.error_uri[len("file://"):]).write_text("{truncated")
    with pytest.raises(StagingError, match="error file .*error.json is not valid JSON"):
        read_outcome(staged)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    with pytest.raises(FileExistsError):
        fetch_bundle(load_spec(staged.spec_uri), busy)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "project", "staging"]


def test_conn_id_in_uri(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow's s3://conn_id@bucket/... notation: the URI's connection wins over the config's; URIs stay clean."""
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_CONN_ID", NOCRED_CONN)
    prefix = f"tests/{uuid.uuid4().hex[:12]}"
    staged = stage(SPEC, b"p", None, run_key="k", base=f"s3://{MOTO_CONN}@{BUCKET}/{prefix}/")
    assert staged.conn_id == MOTO_CONN
    assert staged.base == f"s3://{BUCKET}/{prefix}" and "@" not in staged.spec_uri
    spec = load_spec(staged.spec_uri, conn_id=MOTO_CONN)
    assert spec["staging"]["conn_id"] == MOTO_CONN and "@" not in json.dumps(spec)
    assert load_payload(spec) == b"p"
