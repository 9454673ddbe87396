"""Build a deterministic code bundle (zip or tar.gz) of a project root, cached per process (:mod:`.cache`)."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from airflow_provider_flyte.bundle import cache
from airflow_provider_flyte.bundle.cache import CacheEntry, cache_dir
from airflow_provider_flyte.bundle.code_bundle import CodeBundle
from airflow_provider_flyte.bundle.ignore import SourceFile, normalize_include, select_files
from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteConfigError

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
MAX_BYTES_SETTING = "AIRFLOW__FLYTE__BUNDLE_MAX_BYTES"
FORMATS: dict[str, str] = {"zip": ".zip", "tar.gz": ".tar.gz"}

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
TAR_MTIME = 315532800  # 1980-01-01T00:00:00Z, the same instant as the zip entries
FILE_MODE = 0o644
DIR_MODE = 0o755
COMPRESS_LEVEL = 6
DIGEST_VERSION = b"flyte-code-bundle-v1\0"
#: A file whose mtime is this close to the moment its metadata was read may have changed
#: within one timestamp tick: it is re-hashed before the cache trusts it (git's "racy clean").
RACY_WINDOW_NS = 2_000_000_000


def bundle_digest(items: Iterable[tuple[str, bytes]]) -> str:
    """The bundle digest from ``(relative path, sha256 of content)`` pairs (any order)."""
    h = hashlib.sha256(DIGEST_VERSION)
    for rel, file_sha in sorted(items):
        h.update(rel.encode("utf-8") + b"\0" + file_sha)
    return h.hexdigest()


def build_bundle(
    root: str | os.PathLike[str],
    *,
    include: Sequence[str] = (),
    max_bytes: int | None = None,
    fmt: str = "zip",
    airflowignore: bool = True,
    airflowignore_syntax: str | None = None,
) -> CodeBundle:
    """Bundle the code under ``root``; an unchanged tree returns the cached bundle.

    :param root: the project root (the DAG folder by default).
    :param include: limit the bundle to these files/folders (relative to ``root``).
    :param max_bytes: limit on the total size of the bundled files; default:
        ``[flyte] bundle_max_bytes`` (``AIRFLOW__FLYTE__BUNDLE_MAX_BYTES``), else 100 MiB.
    :param fmt: ``zip`` (importable by ``zipimport`` and Spark's ``addPyFile``) or ``tar.gz``.
    :param airflowignore: honour ``.airflowignore`` files.
    :param airflowignore_syntax: ``glob`` or ``regexp``; default: Airflow's configured syntax.
    :raises FlyteConfigError: bad root, include, format or limit, or a bundle over the limit.
    """
    if fmt not in FORMATS:
        raise FlyteConfigError("code bundle format", fmt, "unsupported archive format", 'use "zip" or "tar.gz"')
    root_path = _resolve_root(root)
    limit = resolve_max_bytes(max_bytes)
    key = (
        str(root_path), normalize_include(root_path, include), fmt, airflowignore,
        airflowignore_syntax,
    )
    with cache.lock():
        snapshot_ns = time.time_ns()
        selection = select_files(
            root_path, include, airflowignore=airflowignore, airflowignore_syntax=airflowignore_syntax
        )
        files = selection.files
        _check_size(root_path, files, limit)
        meta = tuple((f.rel, str(f.path), f.size, f.mtime_ns) for f in files)
        entry = cache.STATE.entries.get(key)
        if (
            entry is not None and entry.meta == meta and entry.bundle.path.is_file()
            and _still_clean(entry, files)
        ):
            cache.STATE.hits += 1
            return entry.bundle
        for rel in selection.secrets:
            log.warning("Code bundle: %s looks like a secret and is not bundled", rel)
        for link in selection.skipped_links:
            log.warning("Code bundle: symlink %s is not followed", link)
        bundle, hashes = _write(root_path, files, fmt)
        cache.STATE.misses += 1
        cache.STATE.entries[key] = CacheEntry(bundle, meta, hashes, snapshot_ns)
        log.info(
            "Code bundle %s: %d files, %d bytes from %s", bundle.path.name, bundle.file_count,
            bundle.size, root_path,
        )
        return bundle


def resolve_max_bytes(max_bytes: int | None = None) -> int:
    """The size limit: the argument, else ``[flyte] bundle_max_bytes``, else 100 MiB."""
    field = "build_bundle(max_bytes=...)"
    value: object = max_bytes
    if value is None:
        field = f"[flyte] bundle_max_bytes ({MAX_BYTES_SETTING})"
        value = _configured_max_bytes()
    if value is None:
        return DEFAULT_MAX_BYTES
    try:
        limit = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        limit = -1
    if isinstance(value, bool) or limit <= 0:
        raise FlyteConfigError(field, value, "not a positive number of bytes", "use e.g. 209715200 for 200 MiB")
    return limit


# -- internals -------------------------------------------------------------------------


def _configured_max_bytes() -> str | None:
    return settings.value("bundle_max_bytes")


def _resolve_root(root: str | os.PathLike[str]) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FlyteConfigError(
            "code bundle root", os.fspath(root), "not an existing directory",
            "point the bundle at the DAG folder or the project root (TaskEnvironment(include=...))",
        )
    return path.resolve()


def _check_size(root: Path, files: list[SourceFile], limit: int) -> None:
    total = sum(f.size for f in files)
    if total <= limit:
        return
    largest = sorted(files, key=lambda f: (-f.size, f.rel))[:5]
    listing = ", ".join(f"{f.rel} ({_human(f.size)})" for f in largest)
    raise FlyteConfigError(
        f"code bundle of {root}",
        f"{total} bytes in {len(files)} files",
        f"the bundle would be {_human(total)}, over the limit of {_human(limit)} ({limit} bytes); "
        f"largest files: {listing}",
        f"exclude what workers do not need with a .flyteignore file in {root} (gitignore syntax, "
        f"e.g. a line 'data/' or '*.parquet'), narrow TaskEnvironment(include=...), or raise the "
        f"limit with {MAX_BYTES_SETTING} / [flyte] bundle_max_bytes",
    )


def _still_clean(entry: CacheEntry, files: list[SourceFile]) -> bool:
    """Re-hash files modified too close to the last check to trust their metadata."""
    now = time.time_ns()
    for f in files:
        if f.mtime_ns >= entry.snapshot_ns - RACY_WINDOW_NS and _sha256_file(f.path) != entry.hashes.get(f.rel):
            return False
    entry.snapshot_ns = now
    return True


def _write(root: Path, files: list[SourceFile], fmt: str) -> tuple[CodeBundle, dict[str, bytes]]:
    directory = cache_dir()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=".building-", suffix=FORMATS[fmt])
    tmp = Path(tmp_name)
    hashes: dict[str, bytes] = {}
    try:
        with os.fdopen(fd, "wb") as raw:
            if fmt == "zip":
                _write_zip(raw, files, hashes)
            else:
                _write_tar_gz(raw, files, hashes)
        digest = bundle_digest(hashes.items())
        final = directory / f"{digest}{FORMATS[fmt]}"
        if final.is_file():
            tmp.unlink()  # same digest, same bytes: keep the existing archive
        else:
            os.replace(tmp, final)
            cache.STATE.writes += 1
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    bundle = CodeBundle(
        path=final, digest=digest, root=root, file_count=len(files), size=final.stat().st_size,
        source_bytes=sum(f.size for f in files), format=fmt, files=tuple(f.rel for f in files),
    )
    return bundle, hashes


def unreadable(path: Path, rel: str, exc: OSError) -> FlyteConfigError:
    """A project file the bundle cannot read: name it and say how to leave it out."""
    reason = exc.strerror or type(exc).__name__
    return FlyteConfigError(
        "code bundle file", rel, f"cannot be read ({type(exc).__name__}: {reason}: {path})",
        "make it readable by the Airflow worker's user, or leave it out of the bundle with a line in "
        ".flyteignore (gitignore syntax)",
    )


def _entries(files: list[SourceFile]) -> list[tuple[str, SourceFile | None]]:
    """Directory entries (``a/``) and files, each directory right before its content."""
    dirs = {"/".join(f.rel.split("/")[:i]) + "/" for f in files for i in range(1, f.rel.count("/") + 1)}
    items: list[tuple[str, SourceFile | None]] = [(d, None) for d in dirs]
    items += [(f.rel, f) for f in files]
    return sorted(items, key=lambda item: item[0].rstrip("/").split("/"))


def _read(f: SourceFile, hashes: dict[str, bytes]) -> bytes:
    try:
        data = f.path.read_bytes()
    except OSError as exc:
        raise unreadable(f.path, f.rel, exc) from None
    hashes[f.rel] = hashlib.sha256(data).digest()
    return data


def _write_zip(raw: IO[bytes], files: list[SourceFile], hashes: dict[str, bytes]) -> None:
    with zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL) as zf:
        for name, f in _entries(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # unix, so the mode bits below are meaningful
            if f is None:
                info.external_attr = ((0o040000 | DIR_MODE) << 16) | 0x10
                zf.writestr(info, b"", compress_type=zipfile.ZIP_STORED)
            else:
                info.external_attr = (0o100000 | FILE_MODE) << 16
                zf.writestr(info, _read(f, hashes), compress_type=zipfile.ZIP_DEFLATED,
                            compresslevel=COMPRESS_LEVEL)


def _write_tar_gz(raw: IO[bytes], files: list[SourceFile], hashes: dict[str, bytes]) -> None:
    gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=COMPRESS_LEVEL)
    with gz, tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, f in _entries(files):
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime = TAR_MTIME
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if f is None:
                info.type = tarfile.DIRTYPE
                info.mode = DIR_MODE
                tar.addfile(info)
            else:
                data = _read(f, hashes)
                info.mode = FILE_MODE
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def _sha256_file(path: Path) -> bytes | None:
    try:
        h = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.digest()
    except OSError:
        return None


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"
