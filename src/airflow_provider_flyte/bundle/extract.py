"""Safe extraction of a code bundle: digest first, then regular files only, inside the target."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO

from airflow_provider_flyte.bundle.build import DIR_MODE, FILE_MODE, bundle_digest


class BundleError(ValueError):
    """A code bundle archive is unsafe, malformed, or not the expected one."""


class UnsafeBundleError(BundleError):
    """An entry would be written outside the target, or is a link/device/duplicate."""


class BundleDigestError(BundleError):
    """The archive's content does not match the expected digest."""


_Opener = Callable[[], IO[bytes]]
_CHUNK = 1 << 20


def extract_bundle(archive: str | os.PathLike[str], target: str | os.PathLike[str], *,
                   expected_digest: str) -> Path:
    """Verify ``archive`` against ``expected_digest``, then extract it into ``target``.

    Nothing is written before the whole archive has been checked: every entry must be a
    regular file or a directory with a relative path free of ``..``, no entry may appear
    twice, and the content digest must match. Files are then written (mode 0644) into a
    fresh folder next to ``target`` which is renamed into place, so ``target`` is either
    absent or complete. ``target`` must not exist or be an empty directory.

    :raises UnsafeBundleError: absolute paths, ``..``, links, devices, duplicates.
    :raises BundleDigestError: the content does not match ``expected_digest``.
    :raises FileExistsError: ``target`` exists and is not empty (e.g. another process
        extracted the same bundle first).
    """
    archive_path = Path(archive)
    target_path = Path(target).absolute()
    try:
        with _open_members(archive_path) as members:
            files = _verify(members, archive_path, expected_digest)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise BundleError(f"{archive_path} is not a readable code bundle: {exc}") from exc
    if target_path.exists() and (not target_path.is_dir() or any(target_path.iterdir())):
        raise FileExistsError(errno.EEXIST, "code bundle target exists and is not empty", str(target_path))
    target_path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target_path.parent, prefix=f".{target_path.name}.partial-"))
    try:
        os.chmod(staging, DIR_MODE)
        with _open_members(archive_path) as members:
            _write(members, staging, files)
        _move_into_place(staging, target_path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target_path


# -- reading ----------------------------------------------------------------------------


@contextmanager
def _open_members(archive: Path) -> Iterator[Iterator[tuple[str, str, _Opener | None]]]:
    """Yield ``(name, kind, opener)``: kind is ``file`` or ``dir`` (other kinds raise)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            yield _zip_members(zf, archive)
        return
    try:
        tf = tarfile.open(archive, mode="r:*")  # noqa: SIM115 - closed below
    except (tarfile.TarError, OSError) as exc:
        raise BundleError(f"{archive} is not a zip or tar code bundle: {exc}") from exc
    with tf:
        yield _tar_members(tf, archive)


def _zip_members(zf: zipfile.ZipFile, archive: Path) -> Iterator[tuple[str, str, _Opener | None]]:
    for info in zf.infolist():
        mode = info.external_attr >> 16
        if info.create_system == 3 and stat.S_ISLNK(mode):
            raise UnsafeBundleError(f"{archive}: entry {info.filename!r} is a symlink; bundles hold regular files only")
        if info.flag_bits & 0x1:
            raise UnsafeBundleError(f"{archive}: entry {info.filename!r} is encrypted")
        if info.is_dir():
            yield info.filename, "dir", None
        elif info.create_system == 3 and stat.S_IFMT(mode) and not stat.S_ISREG(mode):
            raise UnsafeBundleError(f"{archive}: entry {info.filename!r} is not a regular file (mode {mode:o})")
        else:
            yield info.filename, "file", (lambda info=info: zf.open(info))  # type: ignore[misc]


def _tar_members(tf: tarfile.TarFile, archive: Path) -> Iterator[tuple[str, str, _Opener | None]]:
    for member in tf:
        if member.issym() or member.islnk():
            kind = "symlink" if member.issym() else "hard link"
            base = PurePosixPath(member.name).parent if member.issym() else PurePosixPath()
            leaves = _escapes(str(base / member.linkname)) or PurePosixPath(member.linkname).is_absolute()
            where = "points outside the target" if leaves else "is a link"
            raise UnsafeBundleError(
                f"{archive}: {kind} {member.name!r} -> {member.linkname!r} {where}; "
                "bundles hold regular files only"
            )
        if member.isdir():
            yield member.name, "dir", None
        elif member.isreg():
            yield member.name, "file", (lambda m=member: _tar_file(tf, m))  # type: ignore[misc]
        else:
            raise UnsafeBundleError(f"{archive}: entry {member.name!r} is not a regular file or directory")


def _tar_file(tf: tarfile.TarFile, member: tarfile.TarInfo) -> IO[bytes]:
    fh = tf.extractfile(member)
    if fh is None:  # pragma: no cover - isreg() members always have data
        raise BundleError(f"cannot read {member.name!r}")
    return fh


# -- checking ---------------------------------------------------------------------------


def _escapes(name: str) -> bool:
    return ".." in PurePosixPath(name).parts


def _safe_name(raw: str, archive: Path) -> str:
    """The entry's path relative to the target, or :class:`UnsafeBundleError`."""
    name = raw.rstrip("/")
    if not name or "\0" in name:
        raise UnsafeBundleError(f"{archive}: entry {raw!r} has an empty or invalid name")
    if name.startswith("/") or PureWindowsPath(name).drive or PureWindowsPath(name).root:
        raise UnsafeBundleError(f"{archive}: entry {raw!r} has an absolute path")
    parts = name.split("/")
    if ".." in parts:
        raise UnsafeBundleError(f"{archive}: entry {raw!r} contains '..' and would leave the target")
    if any(p in ("", ".") for p in parts):
        raise UnsafeBundleError(f"{archive}: entry {raw!r} is not a normalized relative path")
    return name


def _verify(members: Iterator[tuple[str, str, _Opener | None]], archive: Path, expected: str) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    dirs: set[str] = set()
    for raw, kind, opener in members:
        name = _safe_name(raw, archive)
        if name in files or (kind == "file" and name in dirs):
            raise UnsafeBundleError(f"{archive}: entry {name!r} appears more than once")
        if kind == "dir":
            dirs.add(name)
            continue
        assert opener is not None
        h = hashlib.sha256()
        with opener() as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                h.update(chunk)
        files[name] = h.digest()
    for name in files:
        parents = {"/".join(name.split("/")[:i]) for i in range(1, name.count("/") + 1)}
        clash = parents & files.keys()
        if clash:
            raise UnsafeBundleError(f"{archive}: {sorted(clash)[0]!r} is both a file and a folder")
    actual = bundle_digest(files.items())
    if actual != expected:
        raise BundleDigestError(
            f"{archive}: content digest {actual} does not match the expected {expected}; "
            "the archive is corrupt, was modified, or is a different bundle"
        )
    return files


# -- writing ----------------------------------------------------------------------------


def _write(members: Iterator[tuple[str, str, _Opener | None]], staging: Path, files: dict[str, bytes]) -> None:
    root = os.path.realpath(staging)
    for raw, kind, opener in members:
        name = raw.rstrip("/")
        dest = staging.joinpath(*name.split("/"))
        parent = dest if kind == "dir" else dest.parent
        parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        if os.path.commonpath([root, os.path.realpath(parent)]) != root:  # defence in depth
            raise UnsafeBundleError(f"entry {raw!r} resolves outside the target")
        if kind == "dir":
            continue
        assert opener is not None
        h = hashlib.sha256()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        with opener() as src, os.fdopen(os.open(dest, flags, FILE_MODE), "wb") as out:
            for chunk in iter(lambda: src.read(_CHUNK), b""):  # noqa: B023 - consumed here
                h.update(chunk)
                out.write(chunk)
        if h.digest() != files.get(name):
            raise BundleDigestError(f"entry {name!r} changed while extracting")


def _move_into_place(staging: Path, target: Path) -> None:
    if target.is_dir():
        try:
            target.rmdir()  # only empty: checked before
        except OSError as exc:
            raise FileExistsError(errno.EEXIST, "code bundle target is not empty", str(target)) from exc
    try:
        os.rename(staging, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "code bundle target was created meanwhile", str(target)) from exc
        raise
