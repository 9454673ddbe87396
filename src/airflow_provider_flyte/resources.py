"""``Resources``: Flyte's resource request, read by the engines that size local clusters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from airflow_provider_flyte.plugins.base import PluginConfig

CPU = int | float | str | tuple[int | float | str, int | float | str]
Memory = str | tuple[str, str]

_MEMORY_UNITS = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}
_MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


@dataclass
class Resources(PluginConfig):
    """Resources for a task or a node, as ``flyte.Resources`` (``cpu="2"``, ``memory="4Gi"``).

    A tuple means ``(request, limit)``; the request is what local clusters are sized by.
    """

    cpu: CPU | None = None
    memory: Memory | None = None
    gpu: int | str | None = None
    disk: str | None = None
    shm: str | None = None

    def check(self) -> None:
        if self.cpu is not None:
            cpu_count(self.cpu, field="Resources.cpu")
        if self.memory is not None:
            memory_bytes(self.memory, field="Resources.memory")

    @property
    def cpu_request(self) -> float | None:
        return None if self.cpu is None else cpu_count(self.cpu)

    @property
    def memory_request_bytes(self) -> int | None:
        return None if self.memory is None else memory_bytes(self.memory)


def cpu_count(value: CPU, field: str = "cpu") -> float:
    """``2``, ``"1.5"``, ``"500m"`` or ``(request, limit)`` -> CPUs as a float."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    raw = value[0] if isinstance(value, tuple) else value
    text = str(raw).strip()
    try:
        cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise FlyteConfigError(field, value, "not a CPU quantity", 'use a number such as 2, "1.5" or "500m"') from None
    if cpus <= 0:
        raise FlyteConfigError(field, value, "CPU must be positive", "use a value greater than 0")
    return cpus


def memory_bytes(value: Memory, field: str = "memory") -> int:
    """``"4Gi"``, ``"512Mi"``, ``"2G"`` or ``(request, limit)`` -> bytes."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    raw = value[0] if isinstance(value, tuple) else value
    match = _MEMORY_RE.match(str(raw))
    if not match:
        raise FlyteConfigError(field, value, "not a memory quantity", 'use a Kubernetes quantity such as "4Gi" or "512Mi"')
    number, unit = match.groups()
    return int(float(number) * _MEMORY_UNITS[(unit or "").lower()])
