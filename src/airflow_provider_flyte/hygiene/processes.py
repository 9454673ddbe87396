"""Process hygiene shared by every engine: a task's descendants, and terminate-then-kill with a grace period."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import psutil

log = logging.getLogger(__name__)

#: Seconds a process gets between SIGTERM and SIGKILL, and to exit after SIGKILL.
GRACE_S = 10.0


def descendants(pid: int | None = None, *, recursive: bool = True) -> list[psutil.Process]:
    """Every live process below ``pid`` (default: this process); its children only if not ``recursive``."""
    try:
        return psutil.Process(pid or os.getpid()).children(recursive=recursive)
    except psutil.Error:
        return []


def descendant_pids(pid: int | None = None, *, recursive: bool = True) -> frozenset[int]:
    """PIDs of :func:`descendants`: take one before starting an engine to find what it started."""
    return frozenset(p.pid for p in descendants(pid, recursive=recursive))


def new_descendants(before: Iterable[int], *, match: Callable[[psutil.Process], bool] | None = None,
                    recursive: bool = True) -> list[psutil.Process]:
    """Descendants of this process that were not in ``before`` (and that ``match``, if given).

    ``recursive=False``: this process's children only. A process whose ``match`` raises
    :class:`psutil.Error` (it exited meanwhile) is left out.
    """
    known = set(before)
    found = []
    for proc in descendants(recursive=recursive):
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


def stop_new_descendants(before: Iterable[int], *, match: Callable[[psutil.Process], bool] | None = None,
                         recursive: bool = True, grace_s: float = GRACE_S, what: str = "process"
                         ) -> list[psutil.Process]:
    """A task's descendants, terminate then kill: :func:`stop` what :func:`new_descendants` finds.

    Take ``before`` with :func:`descendant_pids` before the engine starts; afterwards every process
    started since (that ``match``, if given; children only if not ``recursive``) gets SIGTERM, and
    SIGKILL after ``grace_s``, with the processes below it. Returns those still alive (normally none).
    """
    return stop(new_descendants(before, match=match, recursive=recursive), grace_s=grace_s, what=what)


#: Helpers Python's multiprocessing starts once per process and keeps for the process's lifetime, not a task's.
PROCESS_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
_watching = 0  # tasks being watched in this process (a nested sub-task leaves it to the outer task)


@contextlib.contextmanager
def leftovers_stopped(logger: Any = None) -> Iterator[None]:
    """Around a task: afterwards, stop the processes it started and left running, with a warning naming each.

    A child the user's function started and did not wait for (``subprocess.Popen([...])``) would
    outlive the task. Processes that detached into a session of their own (a warm server's
    supervisor, which must outlive the task) and multiprocessing's own helpers are left alone.
    A nested sub-task leaves the sweep to the task around it.
    """
    global _watching
    outermost = _watching == 0
    before = descendant_pids() if outermost else frozenset()
    _watching += 1
    try:
        yield
    finally:
        _watching -= 1
        if outermost:
            stop_left_running(before, logger or log)


def stop_left_running(before: Iterable[int], logger: Any = None) -> list[psutil.Process]:
    """SIGTERM (then SIGKILL) this process's descendants not in ``before``, warning with their pids and commands."""
    left = [p for p in new_descendants(before, match=_owned_by_this_session) if _running(p)]
    if not left:
        return []
    (logger or log).warning("The task left %d process(es) running; stopping them (SIGTERM, then SIGKILL after "
                            "%.0f s): %s", len(left), GRACE_S, "; ".join(describe(p) for p in left))
    return stop(left, what="process left by the task")


def describe(proc: psutil.Process) -> str:
    """``pid 123 (sleep 300)``, the command line cut to 200 characters."""
    try:
        command = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        command = "?"
    return f"pid {proc.pid} ({command[:200]})"


def _owned_by_this_session(proc: psutil.Process) -> bool:
    """Started in this process's session, and not one of multiprocessing's process-lifetime helpers."""
    try:
        if os.getsid(proc.pid) != os.getsid(0):
            return False
    except OSError:
        return False
    return not any(helper in arg for arg in proc.cmdline() for helper in PROCESS_HELPERS)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def mentioning(text: str) -> list[psutil.Process]:
    """Every process on the machine whose command line contains ``text`` (a unique temp dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(text in arg for arg in proc.info["cmdline"] or ()):
                found.append(proc)
    return found
