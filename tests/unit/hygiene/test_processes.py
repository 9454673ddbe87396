"""hygiene/processes: a task's descendants found by what it started, then terminated and, if need be, killed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from airflow_provider_flyte.hygiene.processes import (
    descendant_pids,
    descendants,
    new_descendants,
    stop,
    stop_new_descendants,
)


def _wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def started():
    """Start processes for a test; whatever is still running afterwards is killed."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        for child in descendants(proc.pid):
            child.kill()
        proc.kill()
        proc.wait()


def _sleeper(tag: str) -> list[str]:
    return [sys.executable, "-c", f"import time; time.sleep(120)  # {tag}"]


def _parent_of_sleeper(tag: str) -> list[str]:
    """A process whose child sleeps; the child's command line carries ``tag``."""
    code = f"import subprocess, sys, time; subprocess.Popen({_sleeper(tag)!r}); time.sleep(120)"
    return [sys.executable, "-c", code]


def test_stop_new_descendants_stops_what_started_since_and_the_processes_below(started):
    old = started(_sleeper("old"))
    before = descendant_pids()
    new = started(_parent_of_sleeper("grandchild"))
    _wait_for(lambda: len(descendants(new.pid)) == 1, "the grandchild")
    grandchild = descendants(new.pid)[0].pid
    assert new.pid in {p.pid for p in new_descendants(before)}
    assert old.pid not in {p.pid for p in new_descendants(before)}

    assert stop_new_descendants(before, grace_s=5) == []
    assert _gone(new.pid) and _gone(grandchild)
    assert old.poll() is None, "a process started before the task was stopped"


def test_match_picks_which_new_processes_are_stopped(started):
    before = descendant_pids()
    wanted = started(_sleeper("flyte-test-wanted"))
    other = started(_sleeper("flyte-test-other"))
    def is_wanted(proc: psutil.Process) -> bool:
        return any("flyte-test-wanted" in arg for arg in proc.cmdline())

    _wait_for(lambda: [p.pid for p in new_descendants(before, match=is_wanted)] == [wanted.pid], "the match")
    stop_new_descendants(before, match=is_wanted, grace_s=5)
    assert _gone(wanted.pid)
    assert other.poll() is None


def test_recursive_false_looks_at_children_only(started):
    before = descendant_pids()
    parent = started(_parent_of_sleeper("flyte-test-grandchild"))
    _wait_for(lambda: len(descendants(parent.pid)) == 1, "the grandchild")
    grandchild = descendants(parent.pid)[0]

    def is_grandchild(proc: psutil.Process) -> bool:  # the parent's code names the tag too: not a match
        return proc.cmdline()[-1].startswith("import time") and "flyte-test-grandchild" in proc.cmdline()[-1]

    assert descendant_pids(recursive=False) >= {parent.pid}
    assert grandchild.pid not in descendant_pids(recursive=False)
    assert grandchild.pid in descendant_pids()
    stop_new_descendants(before, match=is_grandchild, recursive=False, grace_s=5)
    assert not _gone(grandchild.pid) and parent.poll() is None, "a process below a child was matched"
    stop_new_descendants(before, match=is_grandchild, grace_s=5)
    assert _gone(grandchild.pid)
    assert parent.poll() is None


_IGNORES_SIGTERM = textwrap.dedent("""
    import pathlib, signal, sys, time
    mark = pathlib.Path(sys.argv[1])
    signal.signal(signal.SIGTERM, lambda signum, frame: mark.write_text("SIGTERM"))
    pathlib.Path(sys.argv[2]).write_text("ready")
    while True:
        time.sleep(0.1)
""")


def test_terminate_first_then_kill_after_the_grace_period(started, tmp_path: Path):
    mark, ready = tmp_path / "got-sigterm", tmp_path / "ready"
    proc = started([sys.executable, "-c", _IGNORES_SIGTERM, str(mark), str(ready)])
    _wait_for(ready.exists, "the process to install its handler")
    began = time.monotonic()
    assert stop([proc.pid], grace_s=1.0, what="test process") == []
    took = time.monotonic() - began
    assert mark.read_text() == "SIGTERM", "SIGKILL came without a SIGTERM first"
    assert took >= 1.0, f"killed after {took:.2f} s, before the grace period ended"
    assert _gone(proc.pid)


def test_a_process_that_ends_on_sigterm_is_not_waited_for(started):
    proc = started(_sleeper("sigterm-ends-it"))
    began = time.monotonic()
    assert stop([proc.pid], grace_s=30) == []
    assert time.monotonic() - began < 10
    assert _gone(proc.pid)


def test_stop_of_nothing_or_of_processes_already_gone():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert stop([]) == []
    assert stop([proc.pid]) == []
    assert stop_new_descendants(descendant_pids() | {os.getpid()}) == []
