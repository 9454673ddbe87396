"""Secrets inside configs: a value is secret because of its key, where it comes from, or what it is.

A plugin config renders as one object, so Airflow cannot see into it: a
``Spark(hadoop_conf={"fs.s3a.secret.key": ...})`` would reach the task log and the rendered
fields in clear. Secret here are

* every value under a key that Airflow's own rules call sensitive (``should_hide_value_for_key``:
  ``password``, ``secret``, ``token``, ``access_key``, ``private_key``, ``service_account`` ... and
  ``[core] sensitive_var_conn_names``) or that names a cloud store's key (:data:`STORE_KEY`: an
  Azure account key ``fs.azure.account.key.<account>...``, an Azure SAS ``fs.azure.sas.*``);
* the secret *part* of any other value (:func:`secret_parts`): a URL's userinfo password
  (``postgresql://user:PW@h/db``, ``ray://user:PW@host``) and a sensitive parameter of a URL or a
  connection string (``sc://h:15002/;token=T``, ``jdbc:sqlserver://h;password=PW``, ``?password=PW``);
* whatever a ``{{ var.* }}`` / ``{{ conn.* }}`` template renders to (the operator registers it).

Each is

* registered with Airflow's masker (:func:`register_sensitive`, at construction and after
  rendering), so any log line, rendered field or XCom that holds it shows ``***``;
* shown as ``***`` by :func:`redacted`, which a config's ``repr`` and the run's log line use.

The engine still gets the real value: only what is printed or stored for people changes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

#: Cloud stores' key settings Airflow's name rules miss: Azure account keys and SAS tokens.
STORE_KEY = re.compile(r"(?:^|[._])(?:account[._]key|sas)(?:[._]|$)", re.IGNORECASE)
#: ``scheme://`` and the authority after it (up to the path, query, fragment, a ``;`` parameter or a space).
_AUTHORITY = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#;\s]*)")
#: ``name=value`` in a query (``?a=1&password=x``), a connection string (``;token=x``), a DSN (``password=x``)
#: or a JVM option (``-Djavax.net.ssl.keyStorePassword=x``).
_PARAMETER = re.compile(r"(?:^|[;?&\s])(?:-D)?([A-Za-z_][\w.-]*)\s*=\s*([^;&\s]+)")
MASK = "***"
#: What ``{{ var.* }}`` / ``{{ conn.* }}`` templates rendered in this process (:func:`register_all`): secret
#: wherever they turn up later, whatever the key (the Kubernetes spec and job object seal them too).
_RENDERED_SECRETS: set[str] = set()
#: A rendered secret shorter than this counts only as a whole value, not inside others (Airflow's masker minimum).
_MIN_INSIDE = 5


def is_sensitive(key: Any) -> bool:
    """Is the value of ``key`` (a conf key, an env var name) hidden? Airflow's rule, or a cloud store's key."""
    if not isinstance(key, str):
        return False
    if STORE_KEY.search(key):
        return True
    try:
        from airflow.sdk._shared.secrets_masker import should_hide_value_for_key
    except ImportError:  # pragma: no cover - task SDKs before the shared masker
        from airflow.sdk.execution_time.secrets_masker import should_hide_value_for_key  # type: ignore[no-redef]
    return bool(should_hide_value_for_key(key))


def register(value: str, name: str | None = None) -> None:
    """Register ``value`` with Airflow's masker, in this process and (in a task) the supervisor."""
    if not value:
        return
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(value, name)


def sensitive_values(value: Any) -> Iterator[str]:
    """Every secret in ``value`` (dicts, lists, plugin configs), at any depth.

    A string under a sensitive key is secret whole; any other string, for its :func:`secret_parts` and
    for what a Variable or Connection template rendered in this process (:func:`register_all`).
    """
    yield from _walk(value, hidden=False)


def secret_parts(text: str) -> list[str]:
    """The secret parts of one string: URL userinfo passwords and sensitive ``name=value`` parameters."""
    from urllib.parse import unquote

    parts = [password for _, password in _userinfo(text) if password]
    parts += [value for name, value in _PARAMETER.findall(text) if is_sensitive(name)]
    return parts + [unquote(part) for part in parts if unquote(part) != part]  # as a client decodes it too


def redact_text(text: str) -> str:
    """``text`` with its :func:`secret_parts` as ``***``, and a userinfo without a password (a token) too.

    For messages that echo an address: ``ray://user:PW@h`` -> ``ray://user:***@h``,
    ``sc://h:15002/;token=T`` -> ``sc://h:15002/;token=***``, ``ray://T@h`` -> ``ray://***@h``.
    """
    out = text
    for user, password in _userinfo(text):
        out = out.replace(f"//{user}:{password}@" if password else f"//{user}@",
                          f"//{user}:{MASK}@" if password else f"//{MASK}@")
    return _PARAMETER.sub(_masked_parameter, out)


def _masked_parameter(match: re.Match[str]) -> str:
    """One ``name=value`` match with its value as ``***`` when the name is sensitive."""
    if not is_sensitive(match.group(1)):
        return match.group(0)
    return match.group(0)[: match.start(2) - match.start(0)] + MASK


def _userinfo(text: str) -> list[tuple[str, str]]:
    """``(user, password)`` of each URL's userinfo in ``text`` (``password`` empty when there is none)."""
    found = []
    for authority in _AUTHORITY.findall(text):
        userinfo, at, _ = authority.rpartition("@")
        if at and userinfo:
            user, _, password = userinfo.partition(":")
            found.append((user, password))
    return found


def register_sensitive(value: Any) -> None:
    """Register every value under a sensitive key of ``value`` with Airflow's masker."""
    for secret in sensitive_values(value):
        register(secret)


def register_all(value: Any) -> None:
    """Register every string in ``value`` (any depth) as secret: what a Variable or Connection template rendered."""
    for secret in _walk(value, hidden=True):
        _RENDERED_SECRETS.add(secret)
        register(secret)


def redacted(value: Any, name: str | None = None) -> Any:
    """``value`` with Airflow's masker applied: its secrets (registered first) and registered ones as ``***``."""
    register_sensitive(value)
    try:
        from airflow.sdk.log import redact
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]
    return redact(value, name)


def _walk(value: Any, *, hidden: bool) -> Iterator[str]:
    import dataclasses

    if isinstance(value, str):
        if any(marker in value for marker in ("{{", "{%")):  # a template is no secret (its rendering may be)
            return
        if hidden and value:
            yield value
        elif value:
            yield from secret_parts(value)
            yield from (secret for secret in _RENDERED_SECRETS
                        if secret == value or (len(secret) >= _MIN_INSIDE and secret in value))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, hidden=hidden or is_sensitive(key))
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _walk(item, hidden=hidden)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _walk(getattr(value, f.name), hidden=hidden or is_sensitive(f.name))
    elif hidden and isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
