"""``Resources``, ``GPU`` and ``Device``: Flyte's resource request, read by the engines that size local
clusters and by the Kubernetes manifests."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from airflow_provider_flyte.plugins.base import PluginConfig, is_template

#: flyte-sdk 2.12's GPU types (``GPU(device=...)``, ``gpu="A100:2"``).
GPU_TYPES = ("A10", "A10G", "A100", "A100 80G", "B200", "H100", "H200", "L4", "L40s", "T4", "V100",
             "RTX PRO 6000", "GB10")
#: Other accelerator classes Flyte names in ``gpu="<type>:<n>"``.
DEVICE_CLASSES = {
    **{name: "GPU" for name in GPU_TYPES},
    **{name: "TPU" for name in ("V5P", "V6E")},
    **{name: "NEURON" for name in ("Inf1", "Inf2", "Trn1", "Trn1n", "Trn2", "Trn2u")},
    **{name: "AMD_GPU" for name in ("MI100", "MI210", "MI250", "MI250X", "MI300A", "MI300X", "MI325X", "MI350X",
                                    "MI355X")},
    "Gaudi1": "HABANA_GAUDI",
}
#: MIG partitions Flyte accepts per GPU type.
GPU_PARTITIONS = {
    "A100": ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"),
    "A100 80G": ("1g.10gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H100": ("1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"),
    "H200": ("1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"),
}


@dataclass(frozen=True)
class Device(PluginConfig):
    """An accelerator request, as ``flyte.Device``: ``quantity`` devices of ``device_class`` (``"GPU"``...)."""

    quantity: int
    device_class: str = "GPU"
    device: str | None = None
    partition: str | None = None

    def check(self) -> None:
        from airflow_provider_flyte.exceptions import FlyteConfigError

        if isinstance(self.quantity, bool) or self.quantity < 1:
            raise FlyteConfigError("Device.quantity", self.quantity, "GPU quantity must be at least 1",
                                   "request 1 or more devices, or leave gpu unset")


def GPU(device: str, quantity: int, partition: str | None = None) -> Device:  # noqa: N802 (Flyte's name)
    """``flyte.GPU``: ``quantity`` GPUs of type ``device`` (``"A100"``, ``"H100"``...), optionally a MIG partition."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise FlyteConfigError("GPU.quantity", quantity, "GPU quantity must be at least 1",
                               'request 1 or more GPUs, e.g. GPU("A100", 1)')
    if device not in GPU_TYPES:
        raise FlyteConfigError("GPU.device", device, "not a GPU type Flyte knows", f"use one of {', '.join(GPU_TYPES)}")
    if partition is not None and device in GPU_PARTITIONS and partition not in GPU_PARTITIONS[device]:
        raise FlyteConfigError("GPU.partition", partition, f"not a partition of {device}",
                               f"use one of {', '.join(GPU_PARTITIONS[device])}")
    return Device(quantity=quantity, device_class="GPU", device=device, partition=partition)

CPU = int | float | str | tuple[int | float | str, int | float | str]
Memory = str | tuple[str, str]

_MEMORY_UNITS = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}
#: A memory quantity: a number and an optional unit (k, Mi, GB...); what memory_bytes reads.
MEMORY_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


@dataclass
class Resources(PluginConfig):
    """Resources for a task or a node, as ``flyte.Resources`` (``cpu="2"``, ``memory="4Gi"``).

    A tuple means ``(request, limit)``; the request is what local clusters are sized by.
    """

    cpu: CPU | None = None
    memory: Memory | None = None
    gpu: int | str | Device | None = None
    disk: str | None = None
    shm: str | None = None

    def check(self) -> None:
        if self.cpu is not None:
            cpu_count(self.cpu, field="Resources.cpu")
        if self.memory is not None:
            memory_bytes(self.memory, field="Resources.memory")
        if self.gpu is not None:
            parse_gpu(self.gpu, field="Resources.gpu")
        if self.disk is not None:
            memory_bytes(self.disk, field="Resources.disk")
        if self.shm is not None and self.shm != "auto":
            memory_bytes(self.shm, field="Resources.shm")
        _check_request_within_limit("cpu", self.cpu, cpu_count)
        _check_request_within_limit("memory", self.memory, memory_bytes)

    @property
    def cpu_request(self) -> float | None:
        """CPUs requested; ``None`` when unset or ``0`` (Flyte accepts ``cpu=0``: no request)."""
        if self.cpu is None:
            return None
        return cpu_count(self.cpu) or None

    def get_device(self) -> Device | None:
        """The accelerator request as a :class:`Device` (``None`` without one), as ``flyte.Resources.get_device``."""
        return None if self.gpu is None else parse_gpu(self.gpu)

    @property
    def gpu_count(self) -> int:
        device = self.get_device()
        return device.quantity if device is not None else 0

    def get_shared_memory(self) -> str | None:
        """``shm`` as Flyte returns it: ``None`` unset, ``""`` for ``"auto"`` (the node's maximum), else the size."""
        if self.shm is None:
            return None
        return "" if self.shm == "auto" else self.shm

    @property
    def shared_memory(self) -> str | None:
        """The ``/dev/shm`` size (``shm``); ``"auto"`` means as much as the node allows."""
        return self.shm

    @property
    def memory_request_bytes(self) -> int | None:
        return None if self.memory is None else memory_bytes(self.memory)


def _check_request_within_limit(name: str, value: Any, parse: Any) -> None:
    """``(request, limit)``: Kubernetes refuses a pod whose request exceeds its limit; so does this, earlier."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    if not isinstance(value, tuple):
        return
    request, limit = (parse(part, field=f"Resources.{name}") for part in value)
    if request > limit:
        raise FlyteConfigError(
            f"Resources.{name}", value, f"the request ({value[0]}) is greater than the limit ({value[1]})",
            f"use ({name}_request, {name}_limit) with the request <= the limit, e.g. {name}=({value[1]!r}, {value[0]!r})",
        )


def cpu_count(value: CPU, field: str = "cpu") -> float:
    """``2``, ``"1.5"``, ``"500m"`` or ``(request, limit)`` -> CPUs as a float."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    raw = value[0] if isinstance(value, tuple) else value
    text = str(raw).strip()
    try:
        cpus = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise FlyteConfigError(field, value, "not a CPU quantity", 'use a number such as 2, "1.5" or "500m"') from None
    if not math.isfinite(cpus):
        raise FlyteConfigError(field, value, "not a finite CPU quantity", 'use a number such as 2, "1.5" or "500m"')
    if cpus < 0:
        raise FlyteConfigError(field, value, "cpu must be greater than or equal to 0", "use 0 or a positive number")
    return cpus


def parse_gpu(value: Any, field: str = "gpu") -> Device:
    """``2``, ``"A100:2"``, ``GPU("A100", 2)`` or ``Device(...)`` -> :class:`Device` (``0`` -> quantity 0 GPUs)."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    fix = 'use a count (gpu=1), an accelerator string (gpu="A100:2") or GPU("A100", 2)'
    if isinstance(value, Device):
        return value
    if isinstance(value, bool):
        raise FlyteConfigError(field, value, "not a GPU request", fix)
    if isinstance(value, int):
        if value < 0:
            raise FlyteConfigError(field, value, "gpu must be greater than or equal to 0", fix)
        return _device(value)
    if isinstance(value, str) and not is_template(value):
        name, sep, count = value.rpartition(":")
        if sep and name in DEVICE_CLASSES and count.isdigit() and 1 <= int(count) <= 16:
            return Device(quantity=int(count), device_class=DEVICE_CLASSES[name], device=name)
        raise FlyteConfigError(field, value, "not an accelerator Flyte knows",
                               f'{fix}; types: {", ".join(DEVICE_CLASSES)}')
    raise FlyteConfigError(field, value, "not a GPU request", fix)


def _device(count: int) -> Device:
    """A ``Device`` for a bare count; ``0`` (no GPU) skips Device's at-least-one rule."""
    if count >= 1:
        return Device(quantity=count)
    device = object.__new__(Device)
    for name, val in (("quantity", 0), ("device_class", "GPU"), ("device", None), ("partition", None)):
        object.__setattr__(device, name, val)
    return device


def memory_bytes(value: Memory, field: str = "memory") -> int:
    """``"4Gi"``, ``"512Mi"``, ``"2G"`` or ``(request, limit)`` -> bytes."""
    from airflow_provider_flyte.exceptions import FlyteConfigError

    raw = value[0] if isinstance(value, tuple) else value
    match = MEMORY_RE.match(str(raw))
    if not match:
        raise FlyteConfigError(field, value, "not a memory quantity", 'use a Kubernetes quantity such as "4Gi" or "512Mi"')
    number, unit = match.groups()
    return int(float(number) * _MEMORY_UNITS[(unit or "").lower()])
