"""Process helpers for leak and kill tests: run a DAG in a child process, inspect its descendants."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

_RUNNER = """
import sys
from tests.support.dagrun import DagRunner
result = DagRunner().run(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 and sys.argv[2] else None)
print("DAGRUN_STATE=" + result.state, flush=True)
"""


def start_dag_process(dag_file: str | Path, dag_id: str | None = None, *, env: dict[str, str] | None = None,
                      cwd: str | Path | None = None) -> subprocess.Popen[str]:
    """Run ``dag.test()`` of ``dag_file`` in a new session (process group) of its own."""
    child_env = {**os.environ, **(env or {})}
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), child_env.get("PYTHONPATH", "")]))
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(dag_file), dag_id or ""],
        env=child_env, cwd=str(cwd or os.getcwd()), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (zombies count as gone)."""
    out = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_for(predicate: Callable[[], object], timeout: float, interval: float = 0.2, what: str = "condition") -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def eventually_empty(problems: Callable[[], list[str]], timeout: float, interval: float = 0.5) -> list[str]:
    """Poll ``problems()`` until it returns nothing or ``timeout`` passes; return the last answer."""
    deadline = time.monotonic() + timeout
    found = problems()
    while found and time.monotonic() < deadline:
        time.sleep(interval)
        found = problems()
    return found


def processes_matching(needle: str) -> list[psutil.Process]:
    """All processes on the machine whose command line contains ``needle``."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if needle in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


def terminate_group(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> str:
    """Signal only the DAG process (as Airflow's supervisor would), then return its output."""
    proc.send_signal(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    return out


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False
