"""A real two-node Ray cluster on 127.0.0.1 for tests: ``ray start --head`` plus one more node.

Both nodes run in process groups of their own, from a scratch working directory, with no
``PYTHONPATH``: Ray workers can import the user's helper modules only if the task ships
them (the code bundle). The head turns on token auth with a token of its own (not
``~/.ray/auth_token``), so a task reaches it only with the connection's token.

Loopback only: Ray binds every interface unless the node's IP is 127.0.0.1, and on Linux it
replaces ``--node-ip-address 127.0.0.1`` by the machine's outward IP. The nodes run with
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (Ray's single-machine mode: the node IP stays
127.0.0.1, so every server binds 127.0.0.1); the second node's ``ray start`` runs through a
launcher that lets it join in that mode (``ray start`` refuses to add nodes in it) and keeps
its loopback address. Every other port is given or random.

``ray stop`` is never used: it stops every Ray process on the machine, including other
developers'. Stopping sends SIGTERM to each ``ray start --block`` (which stops its node),
then SIGKILLs whatever of the process groups and descendants is left, and checks that no
process mentioning the cluster's temp dir remains.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.support.procs import free_port, port_open

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
SECOND_NODE_RESOURCE = "flyte_test_second_node"
RAY = str(Path(sys.executable).parent / "ray")
# ``ray start`` for a node that joins in single-machine mode, keeping its 127.0.0.1 address.
JOIN_LAUNCHER = (
    "import sys\n"
    "import ray._private.ray_constants as constants\n"
    "import ray._private.services as services\n"
    "constants.ENABLE_RAY_CLUSTER = True  # only ray start's 'no multi-node' check reads it here\n"
    "services.resolve_ip_for_localhost = lambda host: host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv[0] = 'ray'\n"
    "main()\n"
)


@dataclass
class RayCluster:
    """A running head + one worker node; every path and port the tests need."""

    base: Path
    gcs_port: int
    client_port: int
    dashboard_port: int
    token: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def client_address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def worker_node(self) -> subprocess.Popen[bytes]:
        return self.procs[1]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "RAY_", "FLYTE_"))}
        env.pop("PYTHONPATH", None)
        env.update(
            RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token, RAY_USAGE_STATS_ENABLED="0",
            RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", AUTOSCALER_METRIC_PORT="0", DASHBOARD_METRIC_PORT="0",
        )
        return env

    def start_node(self, name: str, argv: list[str]) -> None:
        log = self.base / "logs" / f"{name}.out"
        self.logs.append(log)
        with open(log, "wb") as out:
            self.procs.append(subprocess.Popen(
                argv, cwd=self.base / "cwd", env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            ))

    def nodes(self) -> list[dict[str, Any]]:
        """The cluster's nodes from the dashboard's state API (``[]`` while it does not answer)."""
        request = urllib.request.Request(f"{self.dashboard_url}/api/v0/nodes",
                                         headers={"Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return list(json.loads(resp.read())["data"]["result"]["result"])
        except (OSError, ValueError, KeyError):
            return []

    def alive_nodes(self) -> list[dict[str, Any]]:
        return [n for n in self.nodes() if n.get("state") == "ALIVE"]

    def processes(self) -> list[psutil.Process]:
        """Every running process of the cluster (both ``ray start`` trees)."""
        self.remember()
        return [p for p in self.seen.values() if _running(p)]

    def remember(self) -> None:
        for proc in self.procs:
            try:
                root = psutil.Process(proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    self.seen.setdefault(p.pid, p)
            except psutil.NoSuchProcess:
                pass
        for p in processes_mentioning(str(self.base)):
            self.seen.setdefault(p.pid, p)

    def listening(self) -> set[tuple[str, int]]:
        found = set()
        for proc in self.processes():
            try:
                for conn in proc.net_connections("inet"):
                    if conn.status == psutil.CONN_LISTEN:
                        found.add((conn.laddr.ip, conn.laddr.port))
            except psutil.Error:
                continue
        return found

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines() if log.exists() else []
            out.append(f"--- {log.name}\n" + "\n".join(text[-lines:]))
        return "\n".join(out)

    def check_running(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}\n{self.log_tail()}")

    def wait(self, predicate: Any, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_running()
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout}s\n{self.log_tail()}")

    def stop(self) -> list[psutil.Process]:
        """Stop both nodes (worker first); return the processes that survived."""
        self.remember()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # ray start --block stops its node's processes
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=STOP_TIMEOUT_S)
        for proc in self.procs:
            _signal_group(proc.pid, signal.SIGKILL)
        for p in alive:
            _signal(p, signal.SIGKILL)
        psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_TIMEOUT_S)
        return [p for p in self.seen.values() if _running(p)] + processes_mentioning(str(self.base))


def _node_ports() -> list[str]:
    """Ports of one node: all given (or random), none of Ray's fixed defaults."""
    ports = ("--object-manager-port", "--node-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
    argv = []
    for flag in ports:
        argv += [flag, str(free_port())]
    return argv + ["--min-worker-port", "0", "--max-worker-port", "0"]


def start_cluster() -> RayCluster:
    # Ray's socket paths live under the temp dir and are length-limited: keep it short.
    base = Path(tempfile.mkdtemp(prefix="frc-", dir="/tmp"))
    for sub in ("logs", "cwd", "h", "w"):
        (base / sub).mkdir()
    cluster = RayCluster(base, free_port(), free_port(), free_port(), secrets.token_hex(32))
    common = ["--block", "--num-cpus", "1", "--object-store-memory", str(80 * 1024 * 1024),
              "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    try:
        cluster.start_node("head", [
            RAY, "start", "--head", *common, "--temp-dir", str(base / "h"),
            "--port", str(cluster.gcs_port), "--ray-client-server-port", str(cluster.client_port),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(cluster.dashboard_port), *_node_ports(),
        ])
        cluster.wait(lambda: len(cluster.alive_nodes()) == 1, "Ray head")
        cluster.start_node("worker", [
            sys.executable, "-c", JOIN_LAUNCHER, "start", *common, "--temp-dir", str(base / "w"),
            "--address", cluster.gcs_address, "--resources", json.dumps({SECOND_NODE_RESOURCE: 1}),
            *_node_ports(),
        ])
        cluster.wait(lambda: len(cluster.alive_nodes()) == 2 and port_open(cluster.client_port),
                     "Ray worker node and client server")
    except BaseException:
        cluster.stop()
        raise
    return cluster


def processes_mentioning(needle: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if proc.pid != os.getpid() and needle in " ".join(proc.info["cmdline"] or []) and _running(proc):
                found.append(proc)
        except psutil.Error:
            pass
    return found


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(sig)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[RayCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        leftover = cluster.stop()
        shutil.rmtree(cluster.base, ignore_errors=True)
        assert not leftover, f"Ray cluster processes survived: {[(p.pid, _name(p)) for p in leftover]}"
