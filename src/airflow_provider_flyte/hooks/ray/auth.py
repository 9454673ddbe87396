"""Ray's token authentication for a task's driver: whether Ray has it, and its per-process cache.

Ray >= 2.52 reads ``RAY_AUTH_MODE`` and the token once per process; a task that changes either
(its connection's token, ``RAY_AUTH_MODE=token`` for a local instance) makes Ray read them again
here, and puts the previous values back after the task.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from airflow_provider_flyte.hygiene.environ import restore as restore_environ

#: The environment variables through which a Ray driver authenticates.
AUTH_ENV = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
TOKEN_AUTH_SINCE = "2.52.0"  # the first Ray release with RAY_AUTH_MODE=token


def token_auth_supported() -> bool:
    """Whether the installed Ray has token authentication (Ray >= 2.52); reads metadata, imports no Ray."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    try:
        return Version(version("ray")) >= Version(TOKEN_AUTH_SINCE)
    except PackageNotFoundError:
        return False


def reload_auth() -> None:
    """Make Ray re-read ``RAY_AUTH_MODE`` and the token (both are cached per process).

    A no-op on Ray releases without token authentication (before 2.52): nothing is cached.
    """
    if not token_auth_supported():
        return
    from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

    Config.initialize("")  # the mode first: a draining gRPC thread must not reload a token it no longer needs
    AuthenticationTokenLoader.instance().reset_cache()


def restore_auth(previous: Mapping[str, str | None]) -> None:
    restore_environ(previous)
    reload_auth()



def ensure_auth_token() -> None:
    """Create ``~/.ray/auth_token`` atomically if token auth is on and no token exists.

    Ray writes the token itself when it is missing, but two tasks starting at once could
    each write a different one, and a raylet could read the other's.
    """
    if os.environ.get("RAY_AUTH_MODE", "token").lower() != "token" or not token_auth_supported():
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH"):
        return
    path = Path.home() / ".ray" / "auth_token"
    if path.exists() and path.stat().st_size > 0:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".auth_token.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # atomic: the first writer wins, later ones keep its token
    finally:
        os.unlink(tmp)
