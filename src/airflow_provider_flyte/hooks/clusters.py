"""Where a task runs when it names a connection: an existing cluster's address and credentials.

Engine-independent. A hook asks :func:`resolve_cluster` for its connection; the result
carries a full address (``spark://h:7077``, ``sc://h:15002``, ``ray://h:10001``,
``tcp://h:8786``), the token and the extras. :func:`probe` checks the address accepts a TCP
connection within a bounded time, so a cluster that is down fails fast with an error naming the
connection and the address instead of hanging in the engine's own retry loop.

``connect_timeout`` also bounds the engine's first *answer*: each hook waits for the server to
speak its protocol (a Dask handshake, a gRPC channel ready, Ray's GCS connect timeouts) at most
that long, so a server that accepts and never answers fails the task within ``connect_timeout``
plus :data:`ANSWER_MARGIN_S` with :func:`no_answer_error`.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from airflow_provider_flyte.core.addresses import check_port, parse_address, shown
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError

DEFAULT_PROBE_TIMEOUT_S = 10.0
#: Connection extra that bounds how long :func:`probe` waits for the cluster.
CONNECT_TIMEOUT_EXTRA = "connect_timeout"
#: Seconds beyond ``connect_timeout`` a server that accepts and never answers may hold a task (the engine
#: client's import, its own rounding of the timeout, the teardown); the documented bound.
ANSWER_MARGIN_S = 30


@dataclass(frozen=True)
class ClusterTarget:
    """An existing cluster named by an Airflow connection."""

    conn_id: str
    conn_type: str
    address: str
    token: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        return urlsplit(self.address).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.address).hostname or ""

    @property
    def port(self) -> int | None:
        return urlsplit(self.address).port

    @property
    def connect_timeout(self) -> float:
        """Seconds to wait for the cluster: the ``connect_timeout`` extra, else the default."""
        raw = self.extra.get(CONNECT_TIMEOUT_EXTRA, DEFAULT_PROBE_TIMEOUT_S)
        try:
            value = float(raw)
        except (TypeError, ValueError):
            value = -1.0
        if value <= 0:
            raise FlyteConfigError(
                f"connection {self.conn_id!r}.extra.{CONNECT_TIMEOUT_EXTRA}", raw, "not a positive number of seconds",
                f'set it to e.g. {{"{CONNECT_TIMEOUT_EXTRA}": 10}}',
            )
        return value

    def describe(self) -> str:
        return f"connection {self.conn_id!r} ({shown(self.address)})"


def resolve_cluster(
    conn_id: str,
    *,
    accepted_types: Mapping[str, str],
    default_ports: Mapping[str, int] | None = None,
) -> ClusterTarget:
    """Read ``conn_id`` and build a :class:`ClusterTarget`.

    :param accepted_types: connection type -> default URL scheme, e.g. ``{"flyte_dask": "tcp"}``.
    :param default_ports: URL scheme -> port used when neither host nor port gives one.

    ``host`` may hold a full URL (its scheme then wins); ``port`` is optional.
    """
    from airflow.sdk import BaseHook

    if not isinstance(conn_id, str) or not conn_id.strip():
        raise FlyteConfigError(
            "conn_id", conn_id, "a connection id must be a non-empty string",
            f"pass the connection's id as a string, e.g. conn_id=\"my_cluster\" (types: {', '.join(accepted_types)})",
        )
    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise FlyteConfigError(
            "conn_id", conn_id, f"the connection does not exist or cannot be read ({exc})",
            f"create it (types: {', '.join(accepted_types)}), e.g. AIRFLOW_CONN_{conn_id.upper()}='...'",
        ) from None
    conn_type = (conn.conn_type or "").lower()
    if conn_type not in accepted_types:
        raise FlyteConfigError(
            f"connection {conn_id!r}.conn_type", conn_type, "this engine cannot use that connection type",
            f"use one of {', '.join(accepted_types)}",
        )
    host = (conn.host or "").strip()
    fix = "set host to the cluster address, e.g. spark://host:7077, ray://host:10001 or tcp://host:8786"
    if not host:
        raise FlyteConfigError(f"connection {conn_id!r}.host", host, "no cluster address", fix)
    parsed = parse_address(f"connection {conn_id!r}.host", host, default_scheme=accepted_types[conn_type], fix=fix)
    port = parsed.port
    if port is None:
        port = check_port(f"connection {conn_id!r}.port", conn.port or None, "set port to the cluster's port, "
                          "or leave it empty to use the engine's default")
    if port is None and default_ports and parsed.scheme in default_ports:
        port = default_ports[parsed.scheme]
    netloc = parsed._replace(port=port).netloc
    rest = parsed.rest
    scheme = parsed.scheme
    from airflow_provider_flyte.core.masking import register, register_sensitive

    register_sensitive(host)  # a token or password written in the address (sc://h/;token=..., ray://u:pw@h)
    if conn.password:
        register(conn.password, None)  # the task SDK masks it too; this also covers a pod's --conn-id
    check_extra(conn_id, conn.extra)  # before extra_dejson, which logs a traceback and returns {}
    target = ClusterTarget(
        conn_id=conn_id,
        conn_type=conn_type,
        address=f"{scheme}://{netloc}{rest}",
        token=conn.password or None,
        extra=dict(conn.extra_dejson or {}),
    )
    _check_extras(target)
    return target


#: Connection extras that must be text when set (Ray's namespace, the dashboard links).
TEXT_EXTRAS = ("namespace", "dashboard_url", "dashboard_link")


def check_extra(conn_id: str, raw: str | None) -> None:
    """A connection's ``extra`` is a JSON object, else a clear error (Airflow would log a traceback and use none).

    The text itself is never shown: extras often hold tokens.
    """
    import json

    if not raw:
        return
    field, shown = f"connection {conn_id!r}.extra", f"<{len(raw)} characters, not shown>"
    fix = 'write the extras as a JSON object, e.g. {"connect_timeout": 10}, or leave extra empty'
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise FlyteConfigError(field, shown, f"not JSON ({exc})", fix) from None
    if not isinstance(value, dict):
        raise FlyteConfigError(field, shown, f"a JSON {type(value).__name__}, not an object of names to values",
                               fix)


def _check_extras(target: ClusterTarget) -> None:
    """Every extra the hooks read has the right type, checked when the connection is read."""
    _ = target.connect_timeout  # raises for a non-positive or non-numeric value
    for key in TEXT_EXTRAS:
        value = target.extra.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise FlyteConfigError(
                f"connection {target.conn_id!r}.extra.{key}", value, "must be a non-empty string",
                f'set it to text, e.g. {{"{key}": "..."}}, or remove it',
            )


def probe(target: ClusterTarget, *, timeout: float = DEFAULT_PROBE_TIMEOUT_S, engine: str = "cluster") -> None:
    """Fail within ``timeout`` seconds, naming the connection, when the address does not answer."""
    if not target.host or target.port is None:
        return
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((target.host, target.port), timeout=min(2.0, timeout)):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.2)
    where = "the connection's host and port are" if target.conn_id else "the address is"
    raise FlyteEngineError(
        f"Cannot reach the {engine} at {target.describe()} within {timeout:.0f}s: {last}. "
        f"Fix: check that the cluster is running and that {where} right."
    )


def no_answer_error(target: ClusterTarget, engine: str, timeout: float, cause: object = None) -> FlyteEngineError:
    """The error for a server that accepted the TCP connection but did not speak ``engine``'s protocol in time."""
    detail = f": {cause}" if cause else ""
    raise_it = (f'raise the connection\'s "{CONNECT_TIMEOUT_EXTRA}" extra' if target.conn_id
                else f'name the cluster with a connection whose "{CONNECT_TIMEOUT_EXTRA}" extra is higher')
    return FlyteEngineError(
        f"The {engine} at {target.describe()} accepted the connection but did not answer within "
        f"{timeout:g}s{detail}. Fix: check that the host and port are those of the {engine} "
        f"(not of another service) and that it is healthy; if it is only slow to answer, {raise_it}."
    )


def channel_is_silent(channel: Any, timeout: float) -> bool:
    """Whether a gRPC ``channel`` is still not ready (no HTTP/2 handshake) after ``timeout`` s; closes it.

    The wait is a Python condition wait: a signal handler (SIGTERM's) runs during it.
    """
    import grpc

    ready = grpc.channel_ready_future(channel)
    try:
        ready.result(timeout=timeout)
        return False
    except grpc.FutureTimeoutError:
        return True
    finally:
        ready.cancel()
        channel.close()
