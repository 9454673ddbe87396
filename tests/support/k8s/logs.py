"""Container logs as the kubelet keeps them: one buffer per container instance (restarts keep the previous one)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass, field


def rfc3339nano(t: float) -> str:
    stamp = dt.datetime.fromtimestamp(t, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond:06d}000Z"


@dataclass
class ContainerLog:
    """The output of one run of one container: lines with their arrival time; ``closed`` once it exited."""

    lines: list[tuple[float, bytes]] = field(default_factory=list)
    closed: bool = False
    _partial: bytes = b""

    def write(self, data: bytes) -> None:
        data = self._partial + data
        *complete, self._partial = data.split(b"\n")
        t = time.time()
        self.lines.extend((t, line + b"\n") for line in complete)

    def close(self) -> None:
        if self._partial:
            self.lines.append((time.time(), self._partial))
            self._partial = b""
        self.closed = True


class LogHub:
    """Every pod's container logs, keyed by ``(namespace, pod name, pod uid)`` then container name."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self._logs: dict[tuple[str, str, str], dict[str, list[ContainerLog]]] = {}
        self.closed = False

    def start(self, ns: str, pod: str, uid: str, container: str) -> ContainerLog:
        """A new run of ``container`` (the former one becomes ``previous``)."""
        with self.cond:
            log = ContainerLog()
            self._logs.setdefault((ns, pod, uid), {}).setdefault(container, []).append(log)
            self.cond.notify_all()
            return log

    def write(self, log: ContainerLog, data: bytes) -> None:
        with self.cond:
            log.write(data)
            self.cond.notify_all()

    def close(self, log: ContainerLog) -> None:
        with self.cond:
            log.close()
            self.cond.notify_all()

    def runs(self, ns: str, pod: str, uid: str, container: str) -> list[ContainerLog]:
        with self.cond:
            return list(self._logs.get((ns, pod, uid), {}).get(container, []))

    def drop(self, ns: str, pod: str, uid: str) -> None:
        with self.cond:
            for runs in self._logs.pop((ns, pod, uid), {}).values():
                for log in runs:
                    log.close()
            self.cond.notify_all()

    def shutdown(self) -> None:
        with self.cond:
            self.closed = True
            for runs_by_container in self._logs.values():
                for runs in runs_by_container.values():
                    for log in runs:
                        log.closed = True
            self.cond.notify_all()
