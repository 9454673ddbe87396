"""``Elastic`` and ``RunPolicy``: flyteplugins' PyTorch config (``flyteplugins.pytorch.task``).

No torch import here: ``nnodes`` is parsed the way ``torch.distributed.run.parse_min_max_nnodes``
does it (``"N"`` or ``"MIN:MAX"``), with clear errors instead of a ``RuntimeError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_flyte.core.bounds import check_count
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.base import PluginConfig
from airflow_provider_flyte.plugins.known_keys import check_known_keys

_NNODES_FIX = 'use a positive int (nnodes=2) or a "MIN:MAX" range with 1 <= MIN <= MAX (nnodes="1:4")'


#: The ``rdzv_configs`` keys torch's rendezvous reads, per backend (static copies of what
#: ``torch.distributed.elastic.rendezvous`` reads; tests/unit/plugins/test_known_keys.py compares them).
#: ``timeout`` is the launcher's (``LaunchConfig``), the other keys the backend's handler's and store's.
_DYNAMIC_KEYS = ("timeout", "join_timeout", "last_call_timeout", "close_timeout", "heartbeat_timeout",
                 "keep_alive_interval", "keep_alive_max_attempt", "read_timeout")
RDZV_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "c10d": frozenset({*_DYNAMIC_KEYS, "is_host", "store_type"}),
    "etcd-v2": frozenset({*_DYNAMIC_KEYS, "protocol", "ssl_cert", "ssl_cert_key", "ca_cert"}),
    "etcd": frozenset({"timeout", "last_call_timeout", "protocol", "cert", "key", "cacert", "etcd_prefix"}),
}


@dataclass
class RunPolicy(PluginConfig):
    """Kubeflow run policy of the PyTorchJob (used on Kubernetes).

    :param clean_pod_policy: which pods to delete when the job ends: ``"None"``, ``"all"`` or ``"Running"``.
    :param ttl_seconds_after_finished: seconds to keep a finished job before it is deleted.
    :param active_deadline_seconds: seconds the job may stay active before it is terminated.
    :param backoff_limit: retries before the job is marked failed.
    """

    clean_pod_policy: Literal["None", "all", "Running"] | None = None
    ttl_seconds_after_finished: int | None = None
    active_deadline_seconds: int | None = None
    backoff_limit: int | None = None

    def check(self) -> None:
        _at_least(self, "ttl_seconds_after_finished", 0)
        _at_least(self, "active_deadline_seconds", 1)
        _at_least(self, "backoff_limit", 0)


@dataclass
class Elastic(PluginConfig):
    """Run the task's function in ``nproc_per_node`` processes per node under ``torch.distributed.elastic``.

    The task's result is rank 0's return value. Worst case before a stuck job fails:
    ``(max_restarts + 1) * (nccl_collective_timeout_sec + nccl_heartbeat_timeout_sec)``.

    :param nnodes: number of nodes, an int or a ``"MIN:MAX"`` range. Locally (on the Airflow worker) it must be 1.
    :param nproc_per_node: worker processes per node (usually one per GPU).
    :param rdzv_backend: rendezvous backend: ``"c10d"``, ``"etcd"`` or ``"etcd-v2"``.
    :param run_policy: Kubeflow run policy, used on Kubernetes.
    :param monitor_interval: seconds between the elastic agent's health checks of its workers.
    :param max_restarts: restarts of the whole worker group before the task fails.
    :param rdzv_configs: rendezvous settings (``timeout``, ``join_timeout`` ...).
    :param nccl_heartbeat_timeout_sec: ``TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC`` (``None``: PyTorch's default).
    :param nccl_async_error_handling: set ``TORCH_NCCL_ASYNC_ERROR_HANDLING=1``.
    :param nccl_collective_timeout_sec: default NCCL collective timeout in the workers (``None``: PyTorch's).
    :param nccl_enable_monitoring: set ``TORCH_NCCL_ENABLE_MONITORING=1``.
    """

    nnodes: int | str
    nproc_per_node: int
    rdzv_backend: Literal["c10d", "etcd", "etcd-v2"] = "c10d"
    run_policy: RunPolicy | None = None
    monitor_interval: int = 3
    max_restarts: int = 3
    rdzv_configs: dict[str, Any] = field(default_factory=lambda: {"timeout": 900, "join_timeout": 900})
    nccl_heartbeat_timeout_sec: int | None = 300
    nccl_async_error_handling: bool = False
    nccl_collective_timeout_sec: int | None = None
    nccl_enable_monitoring: bool = True

    def check(self) -> None:
        parse_nnodes(self.nnodes)
        _at_least(self, "nproc_per_node", 1)
        check_count("Elastic.nproc_per_node", self.nproc_per_node, minimum=1, fix="use nproc_per_node=1 or more")
        _at_least(self, "monitor_interval", 1)
        _at_least(self, "max_restarts", 0)
        _at_least(self, "nccl_heartbeat_timeout_sec", 1)
        _at_least(self, "nccl_collective_timeout_sec", 1)
        known = RDZV_CONFIG_KEYS[self.rdzv_backend]
        check_known_keys("Elastic.rdzv_configs", self.rdzv_configs, known,
                         problem=f"not a setting the {self.rdzv_backend} rendezvous reads (torch would ignore it)",
                         fix=f"use one of {', '.join(sorted(known))}")
        for key, value in self.rdzv_configs.items():
            if key.endswith("timeout") and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
            ):
                raise FlyteConfigError(
                    f"Elastic.rdzv_configs[{key!r}]", value, "a rendezvous timeout must be a positive number of seconds",
                    f"use e.g. rdzv_configs={{{key!r}: 900}}",
                )

    def check_placement(self, placement: str) -> None:
        """A multi-node job needs a cluster: on the worker (one node) its rendezvous would wait forever."""
        if placement in ("local", "warm") and self.max_nodes > 1:  # core.spec.LOCAL / WARM: the worker
            raise FlyteConfigError(
                "Elastic.nnodes", self.nnodes,
                f"{self.max_nodes} nodes need a cluster, and this task has no conn_id, so it would run on the "
                "Airflow worker, which is one node (its rendezvous would wait for nodes that never come)",
                "use nnodes=1 with nproc_per_node=N processes on the worker, or set conn_id to a Kubernetes "
                "connection (TaskEnvironment(conn_id=...)) to run the nodes as a PyTorchJob (docs/kubernetes.md)",
            )

    @property
    def min_nodes(self) -> int:
        return parse_nnodes(self.nnodes)[0]

    @property
    def max_nodes(self) -> int:
        return parse_nnodes(self.nnodes)[1]

    def default_env(self) -> dict[str, str]:
        """The environment flyte-sdk's Elastic plugin gives every worker (set only where unset).

        ``PYTHONUNBUFFERED``; ``OMP_NUM_THREADS=1`` with several processes per node (as torchrun);
        the NCCL settings from this config (the collective timeout as
        ``FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC``, applied in each worker before user code).
        """
        env = {"PYTHONUNBUFFERED": "1"}
        if self.nproc_per_node > 1:
            env["OMP_NUM_THREADS"] = "1"
        if self.nccl_heartbeat_timeout_sec is not None:
            env["TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC"] = str(self.nccl_heartbeat_timeout_sec)
        if self.nccl_async_error_handling:
            env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "1"
        if self.nccl_collective_timeout_sec is not None:
            env[COLLECTIVE_TIMEOUT_ENV] = str(self.nccl_collective_timeout_sec)
        if self.nccl_enable_monitoring:
            env["TORCH_NCCL_ENABLE_MONITORING"] = "1"
        return env


#: Environment variable that carries the default NCCL collective timeout to the workers.
COLLECTIVE_TIMEOUT_ENV = "FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC"


def parse_nnodes(nnodes: int | str, field_name: str = "Elastic.nnodes") -> tuple[int, int]:
    """``2`` -> ``(2, 2)``, ``"1:4"`` -> ``(1, 4)``, as ``torch.distributed.run.parse_min_max_nnodes``."""
    if isinstance(nnodes, bool):
        raise FlyteConfigError(field_name, nnodes, "not a number of nodes", _NNODES_FIX)
    parts = str(nnodes).split(":")
    if len(parts) > 2:
        raise FlyteConfigError(field_name, nnodes, 'not in "MIN:MAX" format', _NNODES_FIX)
    try:
        bounds = [int(part.strip()) for part in parts]
    except ValueError:
        raise FlyteConfigError(field_name, nnodes, "the node counts must be integers", _NNODES_FIX) from None
    min_nodes, max_nodes = bounds[0], bounds[-1]
    if min_nodes < 1:
        raise FlyteConfigError(field_name, nnodes, "the number of nodes must be at least 1", _NNODES_FIX)
    if min_nodes > max_nodes:
        raise FlyteConfigError(
            field_name, nnodes, f"MIN ({min_nodes}) is greater than MAX ({max_nodes})",
            f'swap them: nnodes="{max_nodes}:{min_nodes}"',
        )
    return min_nodes, max_nodes


def _at_least(config: PluginConfig, name: str, minimum: int) -> None:
    value = getattr(config, name)
    if value is not None and value < minimum:
        raise FlyteConfigError(
            f"{type(config).__name__}.{name}", value, f"must be at least {minimum}",
            f"use {name}={minimum} or more",
        )
