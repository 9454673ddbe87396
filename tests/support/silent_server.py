"""A loopback TCP server that accepts every connection and never answers (a "silent server").

It stands for a Dask scheduler, a Spark Connect server or a Ray GCS that is up at the TCP level but
does not speak: connections are accepted and held open, nothing is ever read or written. A thread
accepts; :meth:`SilentServer.stop` closes the listening socket and every accepted connection and joins it.
"""

from __future__ import annotations

import selectors
import socket
import threading
from collections.abc import Callable, Iterator

import pytest


class SilentServer:
    """Listens on ``127.0.0.1:<random port>``; accepts, holds, never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.port: int = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if selector.select(timeout=0.1):
                    try:
                        conn, _ = self._listener.accept()
                    except (BlockingIOError, OSError):
                        continue
                    self.accepted.append(conn)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent_servers() -> Iterator[Callable[[], SilentServer]]:
    """Start silent servers on demand; every one is stopped after the test."""
    started: list[SilentServer] = []

    def start() -> SilentServer:
        started.append(SilentServer())
        return started[-1]

    try:
        yield start
    finally:
        for server in started:
            server.stop()
