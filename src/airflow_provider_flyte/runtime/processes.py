"""Process hygiene shared by every engine: a task's descendants, and terminate-then-kill with a grace period."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable

import psutil

log = logging.getLogger(__name__)

#: Seconds a process gets between SIGTERM and SIGKILL, and to exit after SIGKILL.
GRACE_S = 10.0


def descendants(pid: int | None = None) -> list[psutil.Process]:
    """Every live process below ``pid`` (default: this process)."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=True)
    except psutil.Error:
        return []


def descendant_pids(pid: int | None = None) -> frozenset[int]:
    """PIDs of :func:`descendants`: take one before starting an engine to find what it started."""
    return frozenset(p.pid for p in descendants(pid))


def new_descendants(before: Iterable[int], *, match: Callable[[psutil.Process], bool] | None = None
                    ) -> list[psutil.Process]:
    """Descendants of this process that were not in ``before`` (and that ``match``, if given)."""
    known = set(before)
    found = []
    for proc in descendants():
        if proc.pid in known:
            continue
        try:
            if match is None or match(proc):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def with_children(procs: Iterable[psutil.Process | int]) -> list[psutil.Process]:
    """``procs`` and everything below them, without duplicates or zombies."""
    found: dict[int, psutil.Process] = {}
    for item in procs:
        try:
            proc = item if isinstance(item, psutil.Process) else psutil.Process(item)
            found.setdefault(proc.pid, proc)
            for child in proc.children(recursive=True):
                found.setdefault(child.pid, child)
        except psutil.Error:
            continue
    live = []
    for proc in found.values():
        with contextlib.suppress(psutil.Error):
            if proc.status() != psutil.STATUS_ZOMBIE:
                live.append(proc)
    return live


def stop(procs: Iterable[psutil.Process | int], *, grace_s: float = GRACE_S, what: str = "process",
         children: bool = True) -> list[psutil.Process]:
    """SIGTERM ``procs`` (and their children), SIGKILL what is left after ``grace_s``; reap.

    Returns the processes still alive afterwards (normally none).
    """
    targets = with_children(procs) if children else [p if isinstance(p, psutil.Process) else psutil.Process(p)
                                                     for p in procs if psutil.pid_exists(int(getattr(p, "pid", p)))]
    if not targets:
        return []
    log.info("Stopping %d %s(es): %s", len(targets), what, sorted(p.pid for p in targets))
    for proc in targets:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(targets, timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _, alive = psutil.wait_procs(alive, timeout=grace_s)
    return alive


def mentioning(text: str) -> list[psutil.Process]:
    """Every process on the machine whose command line contains ``text`` (a unique temp dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(text in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
    return found
