"""The supervisor: one detached process per warm server (``python -m airflow_provider_flyte.warm.supervisor DIR``).

Started by the first task that needs the server (a session of its own, so the task's end, SIGTERM
or SIGKILL does not reach it). It starts the engine's server (``launch.json`` names the server
module and its settings), records the address and every pid in ``server.json``, then every
half-second: drops the leases of tasks that died; stops the server when one of its processes
exited (the next task finds the folder gone and starts a fresh one); stops it after ``idle_ttl``
with no lease, or after ``scaledown_ttl`` when more than ``min`` replicas of its fingerprint run.
Stopping happens under the state lock (no lease can be taken meanwhile): state ``stopping``,
SIGTERM then SIGKILL to every process of the server, the folder removed. SIGTERM to the
supervisor (``python -m airflow_provider_flyte.warm stop``) stops the server the same way.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from airflow_provider_flyte.warm import state
from airflow_provider_flyte.warm.servers import SERVER_ENV, owned_dirs, session_ids

POLL_S = 0.5
log = logging.getLogger("airflow_provider_flyte.warm.supervisor")


def server_processes(folder: Path, *, exclude: tuple[int, ...] = ()) -> list[Any]:
    """Every process of the server in ``folder``: ``FLYTE_WARM_SERVER=<folder>`` in its environment,
    or the folder on its command line (the supervisor itself excluded)."""
    import psutil

    record = state.ServerRecord.load(folder)
    markers = [str(folder), *owned_dirs(folder)]
    sessions = {int(p["pid"]) for p in (record.pids if record else [])} | session_ids(folder)
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["cmdline"]):
        if proc.pid in (me, *exclude):
            continue
        with contextlib.suppress(psutil.Error, OSError):
            cmdline = proc.info["cmdline"] or ()
            if "airflow_provider_flyte.warm.supervisor" in " ".join(cmdline):
                continue
            if (os.getsid(proc.pid) in sessions or any(m in arg for arg in cmdline for m in markers)
                    or proc.environ().get(SERVER_ENV) == str(folder)):
                found.append(proc)
    return found


def request_stop(servers: list[tuple[Path, state.ServerRecord]], *, wait_s: float) -> list[str]:
    """Ask each server's supervisor to stop it (SIGTERM) and wait up to ``wait_s`` for its folder to go.

    A server whose supervisor is dead is stopped here. Returns the names asked to stop.
    """
    for folder, record in servers:
        if state.alive(record.supervisor):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(record.supervisor["pid"]), signal.SIGTERM)
            deadline = time.monotonic() + wait_s
            while (folder.exists() or state.alive(record.supervisor)) and time.monotonic() < deadline:
                time.sleep(0.2)
        if folder.exists() and not state.alive(record.supervisor):
            stop_server(folder)
    return [record.name for _, record in servers]


def stop_server(folder: Path, *, exclude: tuple[int, ...] = (), keep_folder: bool = False) -> None:
    """SIGTERM then SIGKILL every process of the server; remove its folder (unless ``keep_folder``)."""
    from airflow_provider_flyte.hygiene.processes import stop

    extra_dirs = [Path(d) for d in owned_dirs(folder)]
    for _ in range(3):  # processes a dying parent spawned at the last moment
        procs = server_processes(folder, exclude=exclude)
        if not procs:
            break
        stop(procs, grace_s=10.0, what="warm server process")
    for extra in extra_dirs:
        state.remove_folder(extra)
    if not keep_folder:
        state.remove_folder(folder)


class Supervisor:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.base = folder.parent
        self.launch = json.loads((folder / "launch.json").read_text())
        self.stopping = False

    def record(self) -> state.ServerRecord:
        record = state.ServerRecord.load(self.folder)
        if record is None:
            raise SystemExit(f"no record in {self.folder}")
        return record

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_term)
        signal.signal(signal.SIGINT, self._on_term)
        try:
            module = importlib.import_module(self.launch["server_module"])
            started = module.start(self.launch["params"], self.folder, self.launch["env"])
        except BaseException as exc:  # noqa: BLE001 - reported to the waiting task through the record
            with state.locked(self.base):
                record = self.record()
                record.state, record.error = state.STOPPING, f"{exc}\n{traceback.format_exc()}"
                record.save(self.folder)
            # The folder stays for the waiting task to read the error (it removes it); if that task is
            # gone too, the next acquire finds a dead supervisor and removes it.
            stop_server(self.folder, keep_folder=True)
            return 1
        import psutil

        procs = [psutil.Process(p.pid) for p in started.procs]
        with state.locked(self.base):
            record = self.record()
            record.state, record.address, record.token = state.READY, started.address, started.token
            record.pids = [state.identity(p) for p in procs]
            record.extra = dict(started.extra)
            record.save(self.folder)
        log.info("warm server %s ready at %s", record.name, started.address)
        return self.watch(record, procs)

    def _on_term(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def watch(self, record: state.ServerRecord, procs: list[Any]) -> int:
        policy = record.policy
        idle_since = time.monotonic()
        while not self.stopping:
            time.sleep(POLL_S)
            dead = [p.pid for p in procs if not state.alive(state.identity(p)) or p.status() == "zombie"]
            if dead:
                log.error("warm server %s: process(es) %s exited; stopping the server", record.name, dead)
                break
            with state.locked(self.base):
                now = state.ServerRecord.load(self.folder)
                if now is None or now.state == state.STOPPING:  # gone, or a task found its engine dead
                    break
                if state.leases(self.folder):
                    idle_since = time.monotonic()
                    continue
                idle = time.monotonic() - idle_since
                if idle >= policy["idle_ttl"] or (idle >= policy["scaledown_ttl"] and self._extra_replica(record)):
                    self._mark_stopping()
                    log.info("warm server %s idle for %.0fs: stopping", record.name, idle)
                    break
        with contextlib.suppress(OSError), state.locked(self.base):
            self._mark_stopping()
        stop_server(self.folder)
        return 0

    def _extra_replica(self, record: state.ServerRecord) -> bool:
        same = [r for _, r in state.servers(self.base)
                if r.fingerprint == record.fingerprint and r.state != state.STOPPING]
        return len(same) > int(policy_min(record.policy))

    def _mark_stopping(self) -> None:
        record = state.ServerRecord.load(self.folder)
        if record is not None:
            record.state = state.STOPPING
            record.save(self.folder)


def policy_min(policy: dict[str, Any]) -> int:
    return int(policy["replicas"][0])


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    return Supervisor(folder).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
