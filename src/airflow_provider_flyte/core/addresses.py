"""Cluster addresses (``scheme://host:port``) checked where they are first known.

Engine-independent, used by connections (:mod:`~airflow_provider_flyte.hooks.clusters`) and by configs
that carry an address (``RayJobConfig.address``). A malformed address is a
:class:`~airflow_provider_flyte.exceptions.FlyteConfigError` naming the field, never a bare
``ValueError`` from ``urllib`` and never silently replaced by a default port.

An address may carry a credential (``ray://user:PW@h``, ``sc://h:15002/;token=T``): every message
shows it through :func:`shown`, which replaces the credential with ``***``.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from airflow_provider_flyte.core.masking import redact_text
from airflow_provider_flyte.exceptions import FlyteConfigError

_FORBIDDEN = set(" \t\r\n\"'<>\\^`{|}")


class Address(NamedTuple):
    scheme: str
    host: str
    port: int | None
    rest: str
    user: str = ""

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        host = f"{self.user}@{host}" if self.user else host
        return host if self.port is None else f"{host}:{self.port}"


def shown(address: str) -> str:
    """``address`` as messages show it: a userinfo password or token, a ``token=`` parameter as ``***``."""
    return redact_text(address)


def parse_address(field: str, address: str, *, default_scheme: str, fix: str) -> Address:
    """``h:6379`` / ``tcp://h:8786/`` -> :class:`Address`; a space, an empty host or a bad port raise."""
    text = address.strip()
    bad = sorted(_FORBIDDEN & set(text))
    if bad:
        raise FlyteConfigError(field, shown(address), f"the address contains {bad[0]!r}, which no host name may hold",
                               fix)
    try:
        parts = urlsplit(text if "://" in text else f"{default_scheme}://{text}")
    except ValueError as exc:  # "local[2]": brackets that hold no IP address
        raise FlyteConfigError(field, shown(address), f"not a host address ({shown(str(exc))})", fix) from None
    if not parts.hostname:
        raise FlyteConfigError(field, shown(address), "the address has no host", fix)
    try:
        port = parts.port
    except ValueError:
        port_text = parts.netloc.rsplit("]", 1)[-1].rpartition(":")[2]
        raise FlyteConfigError(field, shown(address), f"the port {port_text!r} is not a number from 1 to 65535",
                               fix) from None
    if port == 0:
        raise FlyteConfigError(field, shown(address), "the port '0' is not a number from 1 to 65535", fix)
    user = parts.netloc.rpartition("@")[0]
    return Address(parts.scheme, parts.hostname, port, parts.path.rstrip("/"), user)


def check_port(field: str, port: object, fix: str) -> int | None:
    """A connection's separate ``port`` field: ``None`` or 1-65535."""
    if port in (None, ""):
        return None
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise FlyteConfigError(field, port, "not a port number from 1 to 65535", fix)
    return port
