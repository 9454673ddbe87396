"""A task's side of a warm server: find one it may share, or start one; hold a lease; release it.

:func:`acquire` runs under the state lock, so two tasks racing for the first server start exactly
one: the first registers the folder (state ``starting``) with its own lease before it spawns the
supervisor, the second finds it and waits for it (or starts a second replica when the first is
full and ``max(replicas)`` allows). Servers whose supervisor is gone are stopped and removed
first. A task that finds every replica busy waits until one frees up (bounded).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_flyte.core import settings
from airflow_provider_flyte.exceptions import FlyteEngineError
from airflow_provider_flyte.warm import state
from airflow_provider_flyte.warm.supervisor import stop_server

START_TIMEOUT_S = 180.0
WAIT_FOR_SLOT_S = 600.0

log = logging.getLogger(__name__)


@dataclass
class Lease:
    """A task attached to a warm server: release it in the hook's ``post``."""

    record: state.ServerRecord
    folder: Path
    path: Path
    started: bool
    acquire_s: float

    def release(self) -> None:
        with state.locked(self.folder.parent):
            self.path.unlink(missing_ok=True)

    def others_attached(self) -> bool:
        """Whether another task holds a lease on the same server right now."""
        return any(path != self.path for path in state.leases(self.folder))

    def server_alive(self) -> bool:
        """Whether the server is still up: supervisor and every engine process, and its address accepts
        connections (a SIGKILLed process closes its sockets before it shows as a zombie, and the task's
        client sees the closed connection first)."""
        record = state.ServerRecord.load(self.folder)
        return (record is not None and record.state == state.READY and state.alive(record.supervisor)
                and not engine_died(record))

    def describe(self) -> str:
        pids = ",".join(str(int(p["pid"])) for p in self.record.pids)
        return f"{self.record.name} (supervisor pid {int(self.record.supervisor.get('pid', 0))}, server pid(s) {pids})"


def engine_died(record: state.ServerRecord) -> bool:
    """A ready server whose engine process exited or whose address refuses connections: its supervisor
    notices within half a second, a task that ends fast (its client saw the connection drop) sooner."""
    return record.state == state.READY and not (all(state.alive(p) for p in record.pids)
                                                and address_answers(str(record.address)))


def address_answers(address: str) -> bool:
    """Whether the host and port of a server address (``tcp://``, ``sc://``, ``gcs://``) accept connections."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if not port:
        return True  # nothing to check: the process checks decide
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def effective_policy(policy: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(policy)
    override = settings.value("warm_ttl_override_s")
    if override:
        out["idle_ttl"] = out["scaledown_ttl"] = float(override)
    return out


def acquire(engine: str, fingerprint: str, policy: Mapping[str, Any], *, server_module: str,
            params: Mapping[str, Any], env: Mapping[str, str], run_key: str | None = None) -> Lease:
    """A lease on a ready server of ``fingerprint``, starting one if none may take the task."""
    begin = time.monotonic()
    policy = effective_policy(policy)
    lease_id = uuid.uuid4().hex
    deadline = begin + WAIT_FOR_SLOT_S
    while True:
        with state.locked() as base:
            reap_dead(base)
            same = [(f, r) for f, r in state.servers(base) if r.fingerprint == fingerprint and r.state != state.STOPPING]
            for folder, record in same:
                if engine_died(record):  # its supervisor stops it
                    log.warning("Warm %s server %s died: not reusing it", engine, record.name)
                    record.state = state.STOPPING
                    record.save(folder)
            same = [(f, r) for f, r in same if r.state != state.STOPPING]
            chosen = next(((f, r) for f, r in same if len(state.leases(f)) < int(r.policy["concurrency"])), None)
            started = False
            if chosen is None and len(same) < int(policy["replicas"][1]):
                chosen = _register(base, engine, fingerprint, policy, run_key), None  # type: ignore[assignment]
                started = True
            if chosen is not None:
                folder = chosen[0]
                path = state.add_lease(folder, lease_id)
                if started:
                    _spawn_supervisor(folder, server_module, params, env)
                break
        if time.monotonic() > deadline:
            raise FlyteEngineError(f"Every warm {engine} server of this environment stayed busy for "
                                   f"{WAIT_FOR_SLOT_S:.0f}s (ReusePolicy replicas={policy['replicas']}, "
                                   f"concurrency={policy['concurrency']}); raise replicas or concurrency")
        time.sleep(0.5)
    try:
        record = _wait_ready(folder, engine)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return Lease(record, folder, path, started, time.monotonic() - begin)


def _register(base: Path, engine: str, fingerprint: str, policy: Mapping[str, Any], run_key: str | None) -> Path:
    name = f"{engine.lower()}-{fingerprint[:12]}-{uuid.uuid4().hex[:6]}"
    folder = base / name
    folder.mkdir(mode=0o700)
    (folder / "leases").mkdir()
    state.ServerRecord(name=name, engine=engine, fingerprint=fingerprint, state=state.STARTING,
                       policy=dict(policy), run_key=run_key).save(folder)
    return folder


def _spawn_supervisor(folder: Path, server_module: str, params: Mapping[str, Any], env: Mapping[str, str]) -> None:
    (folder / "launch.json").write_text(json.dumps({"server_module": server_module, "params": dict(params),
                                                    "env": dict(env)}))
    os.chmod(folder / "launch.json", 0o600)
    (folder / "logs").mkdir(exist_ok=True)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    package_root = str(Path(__file__).resolve().parents[2])  # this package importable in the supervisor
    child_env["PYTHONPATH"] = package_root
    with open(folder / "logs" / "supervisor.out", "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "airflow_provider_flyte.warm.supervisor", str(folder)],
                                cwd=str(folder), env=child_env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    import psutil

    record = state.ServerRecord.load(folder)
    assert record is not None
    record.supervisor = state.identity(psutil.Process(proc.pid))
    record.save(folder)
    _forget_child(proc)


def _forget_child(proc: subprocess.Popen[bytes]) -> None:
    """The supervisor may outlive this process; if it ends first, reap it (no zombie in a long-lived process)."""
    import threading

    threading.Thread(target=proc.wait, name=f"reap-warm-supervisor-{proc.pid}", daemon=True).start()


def _wait_ready(folder: Path, engine: str) -> state.ServerRecord:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        record = state.ServerRecord.load(folder)
        if record is None:
            raise FlyteEngineError(f"The warm {engine} server in {folder} stopped while starting")
        if record.error:
            logs = _log_tail(folder)
            with state.locked(folder.parent):
                stop_server(folder)
            _wait_exit(record.supervisor)
            raise FlyteEngineError(f"The warm {engine} server {record.name} failed to start: {record.error}{logs}")
        if record.state == state.READY:
            return record
        if record.supervisor and not state.alive(record.supervisor):
            raise FlyteEngineError(f"The supervisor of the warm {engine} server {record.name} died while starting; "
                                   f"see {folder}/logs")
        time.sleep(0.1)
    raise FlyteEngineError(f"The warm {engine} server {folder.name} was not ready within {START_TIMEOUT_S:.0f}s")


def _wait_exit(ident: dict[str, float], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while state.alive(ident) and time.monotonic() < deadline:
        time.sleep(0.1)


def _log_tail(folder: Path) -> str:
    from airflow_provider_flyte.warm.servers import log_tail

    try:
        return "\n" + log_tail(folder)
    except OSError:
        return ""


def reap_dead(base: Path) -> list[str]:
    """Stop and remove servers whose supervisor is gone (SIGKILLed, machine reboot); under the lock."""
    gone = []
    for folder, record in state.servers(base):
        if record.state == state.STARTING and not record.supervisor:
            continue  # being registered right now
        if not state.alive(record.supervisor):
            log.warning("Warm %s server %s lost its supervisor: stopping what is left of it", record.engine,
                        record.name)
            stop_server(folder)
            gone.append(record.name)
    return gone
