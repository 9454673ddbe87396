"""A real ``airflow standalone`` for end-to-end tests: own home, loopback ports, stopped as a process group.

``airflow standalone`` runs the scheduler (LocalExecutor), DAG processor, triggerer and API
server as children of one process. :class:`Standalone` starts it with ``setsid`` in a scratch
``AIRFLOW_HOME`` whose DAG folder holds copies of the DAG files a test needs, on free ports
of 127.0.0.1 only, and stops the whole process group afterwards (SIGTERM, then SIGKILL).

Nothing may listen beyond loopback. The API server binds to ``[api] host``; the scheduler's
and triggerer's log servers would bind to every interface (Airflow hard-codes that), so
the ``airflow`` that standalone launches is a small wrapper that adds ``--skip-serve-logs``
(LocalExecutor task logs are local files, which the API server reads directly).
:meth:`Standalone.listening_beyond_loopback` checks every process of the group.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psutil
import pytest

from tests.support.procs import alive

REPO = Path(__file__).resolve().parents[2]
TEST_DAGS = Path(__file__).resolve().parent / "dags"
EXAMPLE_DAGS = REPO / "src" / "airflow_provider_flyte" / "example_dags"
VENV_BIN = Path(sys.executable).parent
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}

_WRAPPER = """#!/bin/sh
# Launched by `airflow standalone` for its components: keep the log servers (all interfaces) off.
case "$1" in
  scheduler|triggerer) exec "{airflow}" "$@" --skip-serve-logs ;;
esac
exec "{airflow}" "$@"
"""


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandaloneError(AssertionError):
    pass


class Standalone:
    """One ``airflow standalone`` process group serving the given DAG files on 127.0.0.1."""

    def __init__(self, dag_files: Iterable[Path], *, parallelism: int = 4,
                 extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="flyte-e2e-airflow-home-"))
        self.dags = self.home / "dags"
        self.dags.mkdir()
        for path in dag_files:
            shutil.copy2(path, self.dags / Path(path).name)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "standalone.log"
        self.parallelism = parallelism
        self.extra_env = dict(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.pgid: int | None = None
        self._seen: dict[int, psutil.Process] = {}
        self._client: httpx.Client | None = None
        #: process groups started by :meth:`spawn`, stopped with the standalone
        self.extra_pgids: list[int] = []

    # -- lifecycle --------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        bin_dir = self.home / "bin"
        bin_dir.mkdir(exist_ok=True)
        wrapper = bin_dir / "airflow"
        wrapper.write_text(_WRAPPER.format(airflow=VENV_BIN / "airflow"))
        wrapper.chmod(0o755)
        # Start from this process's environment minus Airflow settings (conftest points those at
        # the dag.test() home), then configure this instance from scratch.
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update({
            "PATH": os.pathsep.join([str(bin_dir), str(VENV_BIN), env.get("PATH", "")]),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "SPARK_LOCAL_IP": "127.0.0.1",
            "RAY_USAGE_STATS_ENABLED": "0",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        })
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 240) -> Standalone:
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "airflow"), "standalone"], env=self.env(), cwd=str(self.home),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        log.close()
        self.pgid = self.proc.pid
        self._client = httpx.Client(base_url=self.base_url, timeout=30)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Until the API answers and scheduler, DAG processor and triggerer report healthy."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self._check_running()
            try:
                response = self.client.get("/api/v2/monitor/health")
                last = response.text
                if response.status_code == 200:
                    health = response.json()
                    parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                    if all((health.get(p) or {}).get("status") == "healthy" for p in parts):
                        return
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(1)
        self.fail(f"not healthy after {timeout}s (last health answer: {last})")

    def stop(self, timeout: float = 60) -> list[str]:
        """SIGTERM the process group, SIGKILL what is left; return what survived even that."""
        if self.proc is None or self.pgid is None:
            return []
        if self._client is not None:
            self._client.close()
        self._remember_group()
        procs = list(self._seen.values())
        for pgid in (self.pgid, *self.extra_pgids):
            _killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(procs) and time.monotonic() < deadline:
            time.sleep(0.5)
        for proc in alive(procs):
            with suppress(psutil.NoSuchProcess):
                proc.kill()
        for pgid in (self.pgid, *self.extra_pgids):
            _killpg(pgid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)
        time.sleep(1)
        survivors = alive(procs) + [p for p in alive(self.group()) if p.pid not in self._seen]
        return [f"{p.pid} {_cmdline(p)}" for p in survivors]

    def component(self, name: str) -> list[psutil.Process]:
        """The group's processes of one component (``airflow <name>``, e.g. ``triggerer``), children included."""
        found = []
        for proc in self.group():
            cmd = _cmdline(proc).split()  # [python,] .../airflow <name> ...
            if any(Path(a).name == "airflow" and b == name for a, b in zip(cmd, cmd[1:], strict=False)):
                found.append(proc)
                found.extend(proc.children(recursive=True))
        return found

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start ``airflow <args>`` (e.g. a replacement triggerer) with the standalone's env.

        It runs in a session of its own (a process cannot join the standalone's group from another
        session) and is stopped with the standalone by :meth:`stop`, which counts it as part of
        the group; its output goes to ``<home>/<args[0]>-<n>.log``.
        """
        if self.pgid is None:
            self.fail("the standalone is not started")
        count = len(list(self.home.glob(f"{args[0]}-*.log")))
        log = (self.home / f"{args[0]}-{count + 1}.log").open("wb")
        try:
            proc = subprocess.Popen([str(self.home / "bin" / "airflow"), *args], env=self.env(), cwd=str(self.home),
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
            self.extra_pgids.append(proc.pid)
            return proc
        finally:
            log.close()

    def cleanup(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    # -- processes and sockets --------------------------------------------------------------------
    def group(self) -> list[psutil.Process]:
        """Processes of the standalone's process group, plus their descendants (which may have left it)."""
        found: dict[int, psutil.Process] = {}
        for proc in psutil.process_iter():
            try:
                if os.getpgid(proc.pid) in (self.pgid, *self.extra_pgids):
                    found[proc.pid] = proc
                    for child in proc.children(recursive=True):
                        found[child.pid] = child
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        return list(found.values())

    def _remember_group(self) -> None:
        for proc in self.group():
            self._seen.setdefault(proc.pid, proc)

    def listening_beyond_loopback(self) -> list[str]:
        """``pid cmd ip:port`` for every listening socket of the group not bound to loopback."""
        self._remember_group()
        bad = []
        for proc in self.group():
            try:
                conns = proc.net_connections(kind="inet")
            except psutil.Error:
                continue
            for conn in conns:
                if conn.status == psutil.CONN_LISTEN and conn.laddr.ip not in LOOPBACK:
                    bad.append(f"{proc.pid} {_cmdline(proc)[:80]} {conn.laddr.ip}:{conn.laddr.port}")
        return bad

    @contextmanager
    def watch_listeners(self, interval: float = 1.0) -> Iterator[list[str]]:
        """Sample the group's listening sockets in the background; yields the violations seen."""
        seen: list[str] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                for item in self.listening_beyond_loopback():
                    if item not in seen:
                        seen.append(item)
                stop.wait(interval)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield seen
        finally:
            stop.set()
            thread.join(timeout=30)

    # -- REST -------------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            raise StandaloneError("the standalone is not started")
        return self._client

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to ``/api/v2``; all users are admins, so no login is needed."""
        self._check_running()
        return self.client.request(method, f"/api/v2{path}", **kwargs)

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> dict[str, Any]:
        """Until the DAG processor has parsed ``dag_id`` (an import error fails at once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return dict(response.json())
            errors = self.api("GET", "/importErrors").json().get("import_errors", [])
            if errors:
                self.fail(f"DAG import errors: {errors}")
            time.sleep(2)
        self.fail(f"DAG {dag_id} not parsed after {timeout}s")
        raise AssertionError  # unreachable

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        response = self.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
        response.raise_for_status()
        return list(response.json()["dag_runs"])

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> httpx.Response:
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """Until the run is ``success`` or ``failed``; fails with task states and the log tail on timeout."""
        deadline = time.monotonic() + timeout
        run: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = self.api("GET", _run_path(dag_id, run_id))
            response.raise_for_status()
            run = response.json()
            if run["state"] in ("success", "failed"):
                return run
            time.sleep(2)
        self.fail(f"run {run_id} still {run.get('state')} after {timeout}s; tasks: {self.task_states(dag_id, run_id)}")
        raise AssertionError  # unreachable

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        response = self.api("GET", _run_path(dag_id, run_id) + "/taskInstances", params={"limit": 100})
        response.raise_for_status()
        return list(response.json()["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        path = _run_path(dag_id, run_id) + f"/taskInstances/{task_id}/xcomEntries/return_value"
        response = self.api("GET", path, params={"map_index": map_index, "deserialize": True})
        if response.status_code != 200:
            self.fail(f"XCom of {task_id}[{map_index}]: HTTP {response.status_code} {response.text}")
        return response.json()["value"]

    def task_log_events(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1,
                        try_number: int = 1) -> list[dict[str, Any]]:
        """The task's log as Airflow stores it: one dict per event (``event``, ``level``, ``logger`` ...)."""
        path = _run_path(dag_id, run_id) + f"/taskInstances/{task_id}/logs/{try_number}"
        response = self.api("GET", path, params={"map_index": map_index, "full_content": True},
                            headers={"Accept": "application/json"})
        if response.status_code != 200:
            return [{"event": f"(log unavailable: HTTP {response.status_code} {response.text[:200]})"}]
        content = response.json().get("content", [])
        return [e if isinstance(e, dict) else {"event": str(e)} for e in content]

    def task_log(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1, try_number: int = 1) -> str:
        """The task's log as text (one line per structured log event)."""
        events = self.task_log_events(dag_id, run_id, task_id, map_index, try_number)
        return "\n".join(_log_line(e) for e in events)

    def task_log_errors(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[str]:
        """The error-level events of a task's log (Airflow logs what a task writes to stderr as ERROR)."""
        events = self.task_log_events(dag_id, run_id, task_id, map_index)
        return [f"[{e.get('logger')}] {e.get('event')}" for e in events if e.get("level") in ("error", "critical")]

    def failed_task_logs(self, dag_id: str, run_id: str, limit: int = 3000) -> str:
        """For each task instance that did not succeed: its distinct error lines, then its log tail."""
        out = []
        for ti in self.task_instances(dag_id, run_id):
            if ti["state"] != "success":
                log = self.task_log(dag_id, run_id, ti["task_id"], ti["map_index"], max(ti["try_number"], 1))
                errors = list(dict.fromkeys(
                    line.strip() for line in log.splitlines() if "Error" in line or "Exception" in line
                ))[:12]
                out.append(f"--- {ti['task_id']}[{ti['map_index']}] {ti['state']}; error lines:\n"
                           + "\n".join(errors) + f"\n--- log tail:\n{log[-limit:]}")
        return "\n".join(out)

    # -- diagnostics ------------------------------------------------------------------------------
    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no standalone log)"
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, message: str) -> None:
        raise StandaloneError(f"{message}\n--- airflow standalone log ({self.log_path}), last lines:\n"
                              f"{self.log_tail()}")

    def _check_running(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            self.fail(f"airflow standalone exited with code {self.proc.returncode}")


def _log_line(entry: Any) -> str:
    """One structured log event as text; an exception's type, message and frames follow its event."""
    if not isinstance(entry, dict):
        return str(entry)
    line = str(entry.get("event", entry))
    for error in entry.get("error_detail") or []:
        if isinstance(error, dict):
            frames = "".join(f"\n  {f.get('filename')}:{f.get('lineno')} {f.get('name')}"
                             for f in error.get("frames") or [] if isinstance(f, dict))
            line += f"\n{error.get('exc_type')}: {error.get('exc_value')}{frames}"
    return line


def _run_path(dag_id: str, run_id: str) -> str:
    return f"/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"


def _killpg(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        return "?"


def e2e_dag_files() -> list[Path]:
    """The example DAG the trigger-form tests drive, the Params allow-list DAG and the e2e-only test DAGs."""
    return [EXAMPLE_DAGS / "example_flyte_cluster_params.py", TEST_DAGS / "params_guard_dag.py",
            *sorted(TEST_DAGS.glob("e2e_*.py"))]


def serve(standalone: Standalone) -> Iterator[Standalone]:
    """Fixture body: start ``standalone``, yield it, then check it listened on loopback only and left nothing."""
    try:
        standalone.start()
    except BaseException:
        survivors = standalone.stop()
        standalone.cleanup()
        if survivors:
            raise StandaloneError(f"processes left after a failed start: {survivors}") from None
        raise
    try:
        yield standalone
        exposed = standalone.listening_beyond_loopback()
        assert not exposed, f"airflow standalone listens beyond 127.0.0.1: {exposed}"
    finally:
        survivors = standalone.stop()
        if not survivors:
            standalone.cleanup()
    assert not survivors, f"processes left after stopping airflow standalone: {survivors}"


@pytest.fixture(scope="module")
def airflow_standalone() -> Iterator[Standalone]:
    """A running ``airflow standalone`` serving the example and e2e DAGs; checks loopback and cleanup."""
    server = Standalone(e2e_dag_files(), extra_env={"FLYTE_E2E_DIR": ""})
    server.extra_env["FLYTE_E2E_DIR"] = str(server.home / "e2e")
    (server.home / "e2e").mkdir()
    yield from serve(server)
