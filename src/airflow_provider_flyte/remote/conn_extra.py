"""A field of a kubernetes connection's extras, read as the cncf hook reads its own."""

from __future__ import annotations

from typing import Any


def connection_extra(hook: Any, key: str) -> str | None:
    """The extra ``key`` of the ``KubernetesHook``'s connection (``service_account``, ``kueue_queue``), if set.

    The cncf hook's ``_get_field`` accepts both spellings of an extra (``key`` and the prefixed
    ``extra__kubernetes__key``); a connection that cannot be read counts as one without the field.
    """
    try:
        value = hook._get_field(key)
    except Exception:
        return None
    return str(value) if value else None
