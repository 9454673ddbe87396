"""Environment variables a task changes, and how they are put back (one implementation for every engine)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from airflow_provider_flyte.bundle.user_code import prepend_path


def snapshot(*keys: str) -> dict[str, str | None]:
    """The current values of ``keys`` (``None``: unset), to hand to :func:`restore` later."""
    return {key: os.environ.get(key) for key in keys}


def restore(previous: Mapping[str, str | None]) -> None:
    """Put environment variables back as they were (``None``: unset)."""
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def set_vars(changes: Mapping[str, str]) -> Callable[[], None]:
    """Set ``changes``; return the undo."""
    previous = snapshot(*changes)
    os.environ.update(changes)
    return lambda: restore(previous)


def set_default(key: str, value: str) -> Callable[[], None] | None:
    """Set ``key`` unless it is set already; return the undo (``None`` when nothing changed)."""
    if key in os.environ:
        return None
    os.environ[key] = value
    return lambda: restore({key: None})


def prepend(key: str, entry: str) -> Callable[[], None]:
    """Put ``entry`` first on the path list in ``key`` (``PYTHONPATH``...); return the undo."""
    previous = snapshot(key)
    os.environ[key] = prepend_path(previous[key], entry)
    return lambda: restore(previous)
