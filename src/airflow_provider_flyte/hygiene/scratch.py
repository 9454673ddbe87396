"""Per-task scratch folders that a killed task cannot leak for long.

``post`` removes a task's folders, but a task that is SIGKILLed (Airflow's last resort after
SIGTERM) never runs ``post``. Each folder made here records its owner (pid and process start
time, so a reused pid does not count). Before making a folder, the next task sweeps the
folders of every kind whose owner is gone (another engine's, and a dead process's bundle
cache, ``flyte-bundles-<pid>-*``), in its parent folder and in the temp dir. The processes still using such a folder are
that dead task's leftovers (Ray's agents outlive a SIGKILLed driver for minutes): those
started with ``FLYTE_SCRATCH_DIR=<folder>`` in their environment, those naming it on their
command line and those with a file open in it are stopped (SIGTERM, then SIGKILL), then the
folder is removed. Folders without the owner file (other tools', or one being created) are left.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import psutil

OWNER_FILE = ".flyte-owner"
#: Set in the environment of the processes an engine starts for a task: they belong to that folder's owner.
SCRATCH_ENV = "FLYTE_SCRATCH_DIR"
STOP_GRACE_S = 5.0

log = logging.getLogger(__name__)


def make_scratch_dir(kind: str, *, parent: str | None = None, tag: str = "") -> str:
    """Create ``<parent>/flyte-<kind>-[<tag>-]XXXX`` owned by this process; sweep stale ones (any kind) first."""
    base = parent or tempfile.gettempdir()
    for folder in dict.fromkeys((base, tempfile.gettempdir())):
        reap_stale_scratch_dirs(None, folder)
    return new_owned_dir(kind, base, tag)


def new_owned_dir(kind: str, parent: str, tag: str = "") -> str:
    """Create the folder and its owner file (no sweep)."""
    path = tempfile.mkdtemp(prefix=f"flyte-{kind}-{tag + '-' if tag else ''}", dir=parent)
    me = psutil.Process()
    Path(path, OWNER_FILE).write_text(json.dumps({"pid": me.pid, "started": me.create_time()}))
    return path


def remove_scratch_dir(path: str) -> None:
    """Remove a scratch folder, again if a process wrote into it while it was being removed."""
    shutil.rmtree(path, ignore_errors=True)
    if os.path.exists(path):
        shutil.rmtree(path)


def reap_stale_scratch_dirs(kind: str | None, parent: str | None = None) -> list[str]:
    """Stop the leftovers of ``flyte-<kind>-*`` folders (``None``: every kind) whose owner is dead, remove them."""
    base = parent or tempfile.gettempdir()
    prefix = f"flyte-{kind}-" if kind else "flyte-"
    try:
        candidates = [e.path for e in os.scandir(base) if e.name.startswith(prefix) and e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    stale = [path for path in candidates if _owner_gone(path)]
    if not stale:
        return []
    _stop(_processes_using(stale))
    removed = []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
            log.info("Removed %s, left by a task that was killed before it could clean up", path)
    return removed


def _owner_gone(path: str) -> bool:
    try:
        owner = json.loads(Path(path, OWNER_FILE).read_text())
        pid, started = int(owner["pid"]), float(owner["started"])
    except (OSError, ValueError, KeyError, TypeError):
        return False  # not ours, or still being created
    try:
        return abs(psutil.Process(pid).create_time() - started) > 1.0  # the pid was reused
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:
        return False


def _processes_using(paths: list[str]) -> list[psutil.Process]:
    """Processes tagged with, naming, or holding a file open in one of ``paths`` (this user's)."""
    wanted = set(paths)
    roots = tuple(path.rstrip(os.sep) + os.sep for path in paths)
    found = []
    for proc in psutil.process_iter(["environ", "cmdline", "open_files"]):
        if proc.pid == os.getpid():
            continue
        info = proc.info
        if ((info.get("environ") or {}).get(SCRATCH_ENV) in wanted
                or any(path in arg for arg in info.get("cmdline") or () for path in paths)
                or any(f.path.startswith(roots) for f in info.get("open_files") or ())):
            found.append(proc)
    return found


def _stop(procs: list[psutil.Process]) -> None:
    """SIGTERM, then SIGKILL after :data:`STOP_GRACE_S`."""
    if not procs:
        return
    log.warning("Stopping %d process(es) left by killed tasks: %s", len(procs), [p.pid for p in procs])
    from airflow_provider_flyte.hygiene.processes import stop

    stop(procs, grace_s=STOP_GRACE_S, what="leftover process", children=False)
