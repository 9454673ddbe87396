"""The warm-engine state folder: one sub-folder per server, a lock, leases.

``<root>/`` (``[flyte] warm_dir``, default ``<tmp>/flyte-warm-<uid>``, mode 0700) holds ``.lock``
(``fcntl.flock``: every change to the set of servers or leases is made under it) and one folder
per server, ``<engine>-<fingerprint[:12]>-<id>/``, with ``server.json`` (the record),
``leases/<id>.json`` (one per attached task: its pid and start time), ``logs/`` and the engine's
own files. A folder's owner is its supervisor; a record names every pid the server runs, so a
server whose supervisor died is found and stopped by the next task.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteConfigError

#: Environment form of ``[flyte] warm_dir``.
WARM_DIR_ENV = "AIRFLOW__FLYTE__WARM_DIR"
RECORD = "server.json"
STARTING, READY, STOPPING = "starting", "ready", "stopping"


def root(*, create: bool = True) -> Path:
    """The state folder (created 0700, unless ``create=False``)."""
    raw = settings.value("warm_dir")
    path = Path(raw or Path(tempfile.gettempdir()) / f"flyte-warm-{os.getuid()}")
    if create:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise _not_a_folder(path, configured=bool(raw)) from None
    return path


def _not_a_folder(path: Path, *, configured: bool) -> FlyteConfigError:
    """``[flyte] warm_dir`` (or the default state folder) is a file, or lies under one."""
    field = "[flyte] warm_dir" if configured else "the warm-engine state folder (default of [flyte] warm_dir)"
    return FlyteConfigError(
        field, str(path), "a file is in the way: the state folder of warm engines must be a folder",
        f"point [flyte] warm_dir (env {WARM_DIR_ENV}) at a folder the worker may create, or unset it to use "
        f"<tmp>/flyte-warm-<uid>; or move the file away",
    )


@contextlib.contextmanager
def locked(base: Path | None = None) -> Iterator[Path]:
    """Hold the state folder's lock (exclusive, across processes) for a short change."""
    base = base or root()
    with open(base / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield base
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass
class ServerRecord:
    """One warm server, as ``server.json`` holds it."""

    name: str
    engine: str
    fingerprint: str
    state: str
    policy: dict[str, Any]
    supervisor: dict[str, float] = field(default_factory=dict)  # {"pid": ..., "started": ...}
    pids: list[dict[str, float]] = field(default_factory=list)  # the engine's processes
    address: str | None = None
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    created: float = field(default_factory=time.time)
    run_key: str | None = None  # "<dag_id>/<run_id>" of a scope="run" server

    @property
    def folder(self) -> Path:
        return root() / self.name

    def save(self, folder: Path) -> None:
        tmp = folder / (RECORD + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.chmod(tmp, 0o600)
        os.replace(tmp, folder / RECORD)

    @classmethod
    def load(cls, folder: Path) -> ServerRecord | None:
        try:
            return cls(**json.loads((folder / RECORD).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def identity(proc: psutil.Process | None = None) -> dict[str, float]:
    """A process's pid and start time (a reused pid does not match)."""
    proc = proc or psutil.Process()
    return {"pid": proc.pid, "started": proc.create_time()}


def alive(ident: dict[str, float] | None) -> bool:
    """Whether the process named by :func:`identity` still runs (and is not a zombie)."""
    if not ident:
        return False
    try:
        proc = psutil.Process(int(ident["pid"]))
        return abs(proc.create_time() - float(ident["started"])) < 0.01 and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.Error, KeyError, ValueError):
        return False


def servers(base: Path | None = None) -> list[tuple[Path, ServerRecord]]:
    """Every server folder with a readable record, oldest first."""
    base = base or root()
    found = []
    for entry in sorted(base.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            record = ServerRecord.load(entry)
            if record is not None:
                found.append((entry, record))
    return sorted(found, key=lambda item: item[1].created)


def leases(folder: Path) -> list[Path]:
    """Lease files of tasks still running (leases of dead tasks are removed)."""
    out = []
    for path in sorted((folder / "leases").glob("*.json")):
        try:
            owner = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if alive(owner):
            out.append(path)
        else:
            path.unlink(missing_ok=True)
    return out


def add_lease(folder: Path, lease_id: str) -> Path:
    path = folder / "leases" / f"{lease_id}.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(identity()))
    (folder / "last_lease").write_text(str(time.time()))
    return path


def remove_folder(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    if folder.exists():
        shutil.rmtree(folder)
