"""What a local Ray instance cannot give: ``Resources(memory=..., gpu=...)`` beyond this machine's share.

Locally the task's CPUs size ``ray.init(num_cpus=...)``; memory and accelerators are what Ray finds on this
machine. A request beyond that is not an error (the same DAG runs on a cluster or Kubernetes, where it is
honoured), but it is not silently ignored either: each one is one WARNING line naming the field, its value,
what the local instance has, and what to do (issue 27).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airflow_provider_flyte.core.bounds import human_bytes
from airflow_provider_flyte.resources import Resources

#: Flyte's device classes -> the resource name Ray gives them on a node.
RAY_DEVICE_RESOURCE = {"GPU": "GPU", "AMD_GPU": "GPU", "TPU": "TPU", "NEURON": "neuron_cores",
                       "HABANA_GAUDI": "HPU"}


def unmet_requests(sources: Sequence[tuple[str, Resources | None]], available: Mapping[str, float]) -> list[str]:
    """One warning per ``(field, Resources)`` memory or device request that the local instance cannot give.

    ``available`` is ``ray.cluster_resources()`` of the local instance (``memory`` in bytes, ``GPU`` ...).
    """
    warnings: list[str] = []
    memory = float(available.get("memory", 0))
    for field, resources in sources:
        if resources is None:
            continue
        wanted = resources.memory_request_bytes
        if wanted is not None and wanted > memory:
            warnings.append(
                f"{field}.memory={resources.memory!r} asks for {human_bytes(wanted)}, but the local Ray instance "
                f"has {human_bytes(memory)} of memory for tasks (Ray's share of this machine's free memory): "
                "locally the request is not honoured. Run on a Ray cluster (conn_id) or Kubernetes to get it, "
                "or ask for less for local runs"
            )
        device = resources.get_device()
        if device is None or device.quantity < 1:
            continue
        name = RAY_DEVICE_RESOURCE.get(device.device_class, device.device_class)
        have = float(available.get(name, 0))
        if device.quantity > have:
            warnings.append(
                f"{field}.gpu={resources.gpu!r} asks for {device.quantity} {device.device_class}(s), but the local "
                f"Ray instance has {have:g} ({name} as Ray detects it on this machine): locally the request is not "
                f"honoured, and Ray work that asks for num_gpus (or {name}) waits for one that never comes. Run on "
                "a Ray cluster with them (conn_id) or Kubernetes, or drop gpu= for local runs"
            )
    return warnings
