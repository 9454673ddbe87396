"""Secrets inside configs: Airflow's secrets masker decides what is sensitive and hides it.

A plugin config renders as one object, so Airflow cannot see into it: a
``Spark(hadoop_conf={"fs.s3a.secret.key": ...})`` would reach the task log and the rendered
fields in clear. Here every value under a key that Airflow's own rules call sensitive
(``should_hide_value_for_key``: ``password``, ``secret``, ``token``, ``access_key`` ... and
``[core] sensitive_var_conn_names``) is

* registered with Airflow's masker (:func:`register_sensitive`, at construction and after
  rendering), so any log line, rendered field or XCom that holds it shows ``***``;
* shown as ``***`` by :func:`redacted`, which a config's ``repr`` and the run's log line use.

The engine still gets the real value: only what is printed or stored for people changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def is_sensitive(key: Any) -> bool:
    """Airflow's rule: is the value of ``key`` (a conf key, an env var name) hidden?"""
    if not isinstance(key, str):
        return False
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
    """Every string under a sensitive key in ``value`` (dicts, lists, plugin configs), at any depth."""
    yield from _walk(value, hidden=False)


def register_sensitive(value: Any) -> None:
    """Register every value under a sensitive key of ``value`` with Airflow's masker."""
    for secret in sensitive_values(value):
        register(secret)


def redacted(value: Any, name: str | None = None) -> Any:
    """``value`` with Airflow's masker applied: sensitive keys' values and registered secrets as ``***``."""
    try:
        from airflow.sdk.log import redact
    except ImportError:  # pragma: no cover - older task SDKs
        from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]
    return redact(value, name)


def _walk(value: Any, *, hidden: bool) -> Iterator[str]:
    import dataclasses

    if isinstance(value, str):
        if hidden and value and not any(marker in value for marker in ("{{", "{%")):  # a template is no secret
            yield value
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
