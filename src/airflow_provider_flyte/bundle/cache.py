"""The per-process bundle cache: built bundles by tree, their archive folder, and its cleanup.

Each process builds into a folder of its own (created on first use, owned by its pid and start
time, removed at exit); a forked child starts an empty cache of its own. Folders of processes that
are gone (killed, or ended by ``os._exit``) are swept by the next process that builds a bundle.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import psutil

from airflow_provider_flyte.bundle.code_bundle import CodeBundle
from airflow_provider_flyte.hygiene.scratch import OWNER_FILE, new_owned_dir, reap_stale_scratch_dirs


class CacheInfo(NamedTuple):
    """Counters of :func:`build_bundle` in this process."""

    hits: int  # unchanged tree: the cached bundle was returned
    misses: int  # the tree was read and hashed
    writes: int  # an archive was written


@dataclass
class CacheEntry:
    """A built bundle and what it was built from (each file's metadata and hash, when that was read)."""

    bundle: CodeBundle
    meta: tuple[tuple[str, str, int, int], ...]
    hashes: dict[str, bytes]
    snapshot_ns: int


class CacheState:
    """This process's archive folder, its cached bundles and its counters."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.owner = 0
        self.entries: dict[tuple[object, ...], CacheEntry] = {}
        self.hits = self.misses = self.writes = 0

    def reset(self) -> None:
        self.directory = None
        self.owner = 0
        self.entries.clear()


STATE = CacheState()
_LOCK = threading.RLock()


def lock() -> threading.RLock:
    """The lock around the cache (a new one in a forked child: the parent's may be held by another thread)."""
    return _LOCK


def _after_fork() -> None:
    global _LOCK
    _LOCK = threading.RLock()
    STATE.reset()  # the parent owns its folder; a child builds into its own


os.register_at_fork(after_in_child=_after_fork)


CACHE_KIND = "bundles"
_CACHE_PREFIX = f"flyte-{CACHE_KIND}-"


def sweep_orphaned_caches() -> None:
    """Delete archive folders of processes that are gone.

    ``atexit`` does not run in a process that is killed, or that ends by ``os._exit`` (a forked
    task process); the next process to build a bundle, and the next task that makes a scratch
    folder (:mod:`airflow_provider_flyte.hygiene.scratch`), remove what they left. A folder records its
    owner's pid and start time (a reused pid does not keep it); one without that record (made
    by an older version) goes when the pid in its name is gone.
    """
    reap_stale_scratch_dirs(CACHE_KIND)
    for folder in Path(tempfile.gettempdir()).glob(f"{_CACHE_PREFIX}*-*"):
        pid = folder.name[len(_CACHE_PREFIX):].split("-", 1)[0]
        if (pid.isdigit() and not psutil.pid_exists(int(pid)) and folder.is_dir() and not folder.is_symlink()
                and not (folder / OWNER_FILE).exists()):
            shutil.rmtree(folder, ignore_errors=True)


def _remove_dir(directory: Path, owner: int) -> None:
    if os.getpid() == owner:
        shutil.rmtree(directory, ignore_errors=True)


def cache_info() -> CacheInfo:
    """Hit/miss/write counters of this process's bundle cache."""
    return CacheInfo(STATE.hits, STATE.misses, STATE.writes)


def cache_dir() -> Path:
    """This process's archive folder (created on first use, removed at exit)."""
    with _LOCK:
        if STATE.directory is None or STATE.owner != os.getpid():
            STATE.reset()
            sweep_orphaned_caches()
            # Owned (pid and start time): the next task's scratch sweep removes it if this process is SIGKILLed.
            STATE.directory = Path(new_owned_dir(CACHE_KIND, tempfile.gettempdir(), tag=str(os.getpid())))
            STATE.owner = os.getpid()
            atexit.register(_remove_dir, STATE.directory, STATE.owner)
        return STATE.directory


def clear_cache() -> None:
    """Forget cached bundles and delete this process's archive folder."""
    with _LOCK:
        if STATE.directory is not None and STATE.owner == os.getpid():
            _remove_dir(STATE.directory, STATE.owner)
        STATE.reset()
