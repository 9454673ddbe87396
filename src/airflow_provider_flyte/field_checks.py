"""Checks of environment and operator fields whose bad values would otherwise fail late.

An env var named ``"A=B"`` fails inside ``os.environ`` when the task starts; a service account
``"My SA"`` when Kubernetes refuses the pod; ``startup_timeout="5m"`` when the job is watched.
Each is a :class:`~airflow_provider_flyte.exceptions.FlyteConfigError` when the object is built.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError

#: Kubernetes object names (RFC 1123 subdomain), which service accounts are.
_K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def check_env_var_names(field: str, env_vars: Mapping[str, Any] | None) -> None:
    """Names the OS accepts: not empty, no ``=``, no NUL (values are checked as strings elsewhere)."""
    for name in env_vars or {}:
        if isinstance(name, str) and (not name or "=" in name or "\0" in name):
            raise FlyteConfigError(
                f"{field}[{name!r}]", name, "not an environment variable name (empty, or holding '=' or NUL)",
                "use only the variable's name as the key, e.g. {'OMP_NUM_THREADS': '4'}",
            )
        value = env_vars[name] if env_vars else None
        if isinstance(value, str) and "\0" in value:
            raise FlyteConfigError(f"{field}[{name!r}]", value, "an environment variable value cannot hold NUL",
                                   "remove the NUL character")


def check_image(field: str, image: str | None) -> None:
    if image is not None and (not image.strip() or any(ch.isspace() for ch in image)):
        raise FlyteConfigError(field, image, "not a container image reference (empty or with spaces)",
                               'use a reference such as "ghcr.io/org/image:1.0", or leave it unset')


def check_service_account(field: str, name: str | None) -> None:
    if name is not None and (len(name) > 253 or not _K8S_NAME_RE.match(name)):
        raise FlyteConfigError(field, name, "not a Kubernetes service account name",
                               "use lowercase letters, digits, '-' and '.', starting and ending with a letter or "
                               'digit, e.g. "spark-runner"')


def check_seconds(field: str, value: Any, *, allow_zero: bool = False) -> None:
    """A number of seconds (``None``: the default)."""
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        kind = "a number of seconds, 0 or more" if allow_zero else "a positive number of seconds"
        raise FlyteConfigError(field, value, f"must be {kind}", "pass seconds as a number, e.g. 300")


def check_optional_bool(field: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise FlyteConfigError(field, value, "not a bool", "pass True, False, or None for the default")
