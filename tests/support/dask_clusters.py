"""A real Dask cluster on 127.0.0.1 for tests: ``dask scheduler`` plus ``dask worker --nworkers 2``.

Each command runs in a process group of its own, from a scratch working directory, with no
``PYTHONPATH`` and no Airflow settings: workers import the user's helper modules only if the
task ships them (the code bundle). Stopping sends SIGTERM to each group, SIGKILLs what is left,
and returns every process of the cluster still running (the fixture asserts there is none).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from tests.support.ray_clusters import free_port, port_open

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30
DASK = str(Path(sys.executable).parent / "dask")


@dataclass
class DaskCluster:
    base: Path
    port: int
    dashboard_port: int
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"tcp://127.0.0.1:{self.port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}/status"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "DASK_", "FLYTE_"))}
        env.pop("PYTHONPATH", None)
        # the cluster's own temp folder (the scheduler caches code bundles there): removed with the cluster
        env["TMPDIR"] = str(self.base / "tmp")
        return env

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with open(self.base / "logs" / f"{name}.out", "wb") as out:
            proc = subprocess.Popen(argv, cwd=self.base / "cwd", env=self.env(), stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        return proc

    def start_worker(self, name: str, nworkers: int = 1) -> subprocess.Popen[bytes]:
        return self.start(name, [DASK, "worker", self.address, "--nworkers", str(nworkers), "--nthreads", "1",
                                 "--host", "127.0.0.1", "--no-dashboard", "--name", name,
                                 "--local-directory", str(self.base / "w")])

    def n_workers(self) -> int:
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for log in sorted((self.base / "logs").glob("*.out")):
            out.append(f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(out)

    def wait(self, predicate, what: str, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}\n{self.log_tail()}")
            if predicate():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} not ready after {timeout}s\n{self.log_tail()}")

    def remember(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                root = psutil.Process(proc.pid)
                for p in [root, *root.children(recursive=True)]:
                    self.seen.setdefault(p.pid, p)

    def stop_proc(self, proc: subprocess.Popen[bytes]) -> None:
        self.remember()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> list[psutil.Process]:
        """Stop workers, then the scheduler; return the processes that survived."""
        self.remember()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                self.stop_proc(proc)
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=STOP_TIMEOUT_S)
        for p in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)
        survivors = [p for p in self.seen.values() if _running(p)]
        if not survivors:  # a survivor's files stay for the post-mortem
            shutil.rmtree(self.base, ignore_errors=True)
        return survivors


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start_cluster() -> DaskCluster:
    base = Path(tempfile.mkdtemp(prefix="flyte-dask-cluster-"))
    for sub in ("logs", "cwd", "w", "tmp"):
        (base / sub).mkdir()
    cluster = DaskCluster(base, free_port(), free_port())
    try:
        cluster.start("scheduler", [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(cluster.port),
                                    "--dashboard-address", f"127.0.0.1:{cluster.dashboard_port}"])
        cluster.wait(lambda: port_open(cluster.port), "Dask scheduler")
        cluster.start_worker("w", nworkers=2)
        cluster.wait(lambda: cluster.n_workers() == 2, "2 Dask workers")
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[DaskCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        leftover = cluster.stop()
        assert not leftover, f"Dask cluster processes survived: {[p.pid for p in leftover]}"
