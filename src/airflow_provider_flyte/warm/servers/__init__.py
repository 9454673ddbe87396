"""One module per engine: ``start(params, folder, env) -> Started`` brings up that engine's server.

Each runs inside the supervisor (:mod:`..supervisor`), binds 127.0.0.1 only and returns the
address the engine's attach placement connects to, and the per-server secret where the engine
has one. Every process it starts leads a session of its own and carries ``FLYTE_WARM_SERVER=<folder>``
in its environment, so the whole server is found (and stopped) from the process table even after its
supervisor died (by session id; by the marker or the folder on the command line for processes that
left the session; engines that rename themselves with setproctitle lose the marker, not the session).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: In the environment of every process of a warm server: the server's folder.
SERVER_ENV = "FLYTE_WARM_SERVER"


@dataclass
class Started:
    """What a server module started: its attach address, secret and top-level processes."""

    address: str
    token: str | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def server_env(folder: Path, env: Mapping[str, str], **more: str) -> dict[str, str]:
    """The environment of a server's processes: the task's at start (no Airflow settings), plus the marker."""
    out = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
    out.pop("PYTHONPATH", None)
    out[SERVER_ENV] = str(folder)
    out.update(more)
    return out


DIRS_FILE = "dirs.txt"
SESSIONS_FILE = "sessions.txt"


def own_dir(folder: Path, path: str) -> str:
    """Record a folder outside ``folder`` that the server uses: its processes are found by it, and it is
    removed with the server (written before anything uses it, so a failed start cleans it up too)."""
    with open(folder / DIRS_FILE, "a") as out:
        out.write(path + "\n")
    return path


def owned_dirs(folder: Path) -> list[str]:
    try:
        return [line for line in (folder / DIRS_FILE).read_text().splitlines() if line]
    except OSError:
        return []


def launch(folder: Path, name: str, argv: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """Start one server process, its output in ``logs/<name>.out``, from the server's folder."""
    (folder / "logs").mkdir(exist_ok=True)
    (folder / "cwd").mkdir(exist_ok=True)
    with open(folder / "logs" / f"{name}.out", "wb") as out:
        proc = subprocess.Popen(argv, cwd=folder / "cwd", env=dict(env), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    with open(folder / SESSIONS_FILE, "a") as sessions:  # found by session id even if it renames itself
        sessions.write(f"{proc.pid}\n")
    return proc


def session_ids(folder: Path) -> set[int]:
    """Session ids of every process :func:`launch` started for the server (each leads its own session)."""
    try:
        return {int(line) for line in (folder / SESSIONS_FILE).read_text().split()}
    except (OSError, ValueError):
        return set()


def wait_for(predicate: Callable[[], Any], what: str, procs: list[subprocess.Popen[bytes]], folder: Path,
             timeout: float) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail when a process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: process {proc.pid} exited with {proc.returncode}; see {folder}/logs\n"
                                   + log_tail(folder))
        time.sleep(0.2)
    raise RuntimeError(f"{what}: not ready within {timeout:.0f}s; see {folder}/logs\n" + log_tail(folder))


def log_tail(folder: Path, lines: int = 15) -> str:
    out = []
    for log in sorted((folder / "logs").glob("*.out")):
        text = log.read_text(errors="replace").splitlines()
        out.append(f"--- {log.name}\n" + "\n".join(text[-lines:]))
    return "\n".join(out)


def executable(name: str) -> str:
    """A console script of this interpreter's environment (``dask``, ``ray``)."""
    import sys

    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def getenv_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (servers listen on loopback only)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False
