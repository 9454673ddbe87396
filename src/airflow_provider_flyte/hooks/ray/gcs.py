"""A driver's connection to a Ray cluster's GCS: bounded waits, a silent-GCS check, a loopback-only head."""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from airflow_provider_flyte.hooks.ray import GCS_SCHEME
from airflow_provider_flyte.hygiene.environ import restore as restore_environ
from airflow_provider_flyte.hygiene.environ import snapshot as snapshot_environ

if TYPE_CHECKING:
    from airflow_provider_flyte.hooks.clusters import ClusterTarget


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def keep_loopback_gcs(ray: Any, target: ClusterTarget | None) -> Iterator[None]:
    """Let a driver reach a head that listens on 127.0.0.1 only.

    Ray replaces a loopback GCS address with this machine's outward IP (so that other nodes
    could use it). A head started with ``--node-ip-address 127.0.0.1`` and
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` listens on loopback only and is not found there;
    then Ray's single-machine mode is used while connecting (the driver's node is 127.0.0.1).
    A head that also answers on the outward IP is left to Ray's usual rule.
    """
    if target is None or target.scheme != GCS_SCHEME or not _is_loopback(target.host) or target.port is None:
        yield
        return
    services = ray._private.services
    outward = services.resolve_ip_for_localhost(target.host)
    if _is_loopback(outward) or _answers(outward, target.port):
        yield
        return
    constants = ray._private.ray_constants
    cluster_mode = constants.ENABLE_RAY_CLUSTER
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = cluster_mode


#: Ray's own knobs for how long a driver waits for the GCS: its gRPC channel, the cluster-id call
#: (both in seconds, read from ``RAY_<name>`` when Ray's config is initialized) and the Python retry
#: loop around them (attempts, about one per second plus the waits).
_GCS_WAIT_KNOBS = ("RAY_gcs_rpc_server_connect_timeout_s", "RAY_py_gcs_connect_timeout_s")
_GCS_RETRIES_ENV = "RAY_gcs_server_port_wait_time_s"


@contextlib.contextmanager
def bounded_gcs_wait(timeout: float) -> Iterator[None]:
    """Make ``ray.init`` give up on a GCS that does not answer within about ``timeout`` seconds.

    By default a driver waits 5 s for the GCS channel, 5 s for its pubsub, 30 s for the cluster id,
    and retries that 20 times: a GCS address that accepts and never answers holds ``ray.init`` (and
    SIGTERM's handler, which runs only between those C++ waits) for over ten minutes. Here each of
    the three waits gets a third of ``timeout`` (whole seconds, at least 1) and the loop one
    attempt. Ray reads these when its config is initialized, so it is initialized again on entry;
    the variables are put back on exit and the config is initialized from them again after the task.
    """
    from ray._raylet import Config  # type: ignore[attr-defined]

    step = str(max(1, math.ceil(timeout / 3)))
    previous = snapshot_environ(*_GCS_WAIT_KNOBS, _GCS_RETRIES_ENV)
    os.environ.update({key: step for key in _GCS_WAIT_KNOBS})
    os.environ[_GCS_RETRIES_ENV] = "1"
    Config.initialize("")
    try:
        yield
    finally:
        restore_environ(previous)


def gcs_is_silent(address: str, timeout: float) -> bool:
    """Whether the GCS at ``host:port`` accepts TCP but completes no gRPC handshake within ``timeout`` s.

    Checked before ``ray.init``, whose GCS waits are C++ calls no signal handler interrupts. The
    channel is Ray's own (its TLS settings, ``RAY_USE_TLS``).
    """
    try:
        from ray._private.grpc_utils import init_grpc_channel
    except ImportError:  # Ray before 2.52 kept it in ray._private.utils
        from ray._private.utils import init_grpc_channel  # type: ignore[attr-defined,no-redef]

    from airflow_provider_flyte.hooks.clusters import channel_is_silent

    return channel_is_silent(init_grpc_channel(address), timeout)


def reinitialize_config() -> None:
    """Ray's config from the current environment again (after :func:`bounded_gcs_wait`, once disconnected)."""
    from ray._raylet import Config  # type: ignore[attr-defined]

    Config.initialize("")
