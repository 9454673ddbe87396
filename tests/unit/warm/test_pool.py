"""A warm server counts as dead as soon as an engine process exits or its address refuses connections
(a SIGKILLed scheduler closes its sockets before it shows as a zombie; the task's client sees that first)."""

from __future__ import annotations

import socket
import subprocess
import sys

from airflow_provider_flyte.warm import state
from airflow_provider_flyte.warm.pool import address_answers, engine_died


def _record(address: str, pids: list[dict[str, float]]) -> state.ServerRecord:
    return state.ServerRecord(name="dask-test", engine="Dask", fingerprint="f" * 64, state=state.READY,
                              policy={}, address=address, pids=pids)


def test_a_listening_address_answers_in_every_scheme_and_a_closed_one_does_not() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        for address in (f"tcp://127.0.0.1:{port}", f"sc://localhost:{port}", f"gcs://127.0.0.1:{port}",
                        f"127.0.0.1:{port}"):
            assert address_answers(address), address
    assert not address_answers(f"tcp://127.0.0.1:{port}")


def test_a_ready_server_is_dead_when_its_process_exited_or_its_port_closed() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
        me = state.identity()
        assert not engine_died(_record(address, [me]))

        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        import psutil

        gone = state.identity(psutil.Process(proc.pid))
        proc.wait()
        assert engine_died(_record(address, [me, gone]))
    assert engine_died(_record(address, [me]))
