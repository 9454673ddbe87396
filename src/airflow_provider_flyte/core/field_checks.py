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


def check_kueue_queue(field: str, name: str | None) -> None:
    """A Kueue LocalQueue name: a Kubernetes object name that is also a label value (at most 63 characters).

    ``""`` is allowed: no queue for this task (where a connection or ``[flyte]`` names one).
    """
    if name is None or name == "":
        return
    if not isinstance(name, str) or len(name) > 63 or not _K8S_NAME_RE.match(name):
        raise FlyteConfigError(field, name, "not a Kueue LocalQueue name (the kueue.x-k8s.io/queue-name label value)",
                               "use at most 63 lowercase letters, digits, '-' and '.', starting and ending with a "
                               'letter or digit, e.g. "team-a"; "" for no queue')


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


def retry_count(field: str, value: Any) -> Any:
    """Airflow's ``retries`` from an int or Flyte's ``RetryStrategy(count=...)`` (``None``: the default)."""
    if value is None:
        return None
    count = value if isinstance(value, (int, float, str)) else getattr(value, "count", value)
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise FlyteConfigError(field, value, "not a number of retries",
                               "pass a whole number, 0 or more, e.g. retries=2 (or Flyte's RetryStrategy(count=2))")
    return count


def check_task_function(field: str, fn: Any) -> None:
    """A task's function must return its value: a generator's items would never reach XCom."""
    import inspect

    kind = ("an async generator" if inspect.isasyncgenfunction(fn)
            else "a generator" if inspect.isgeneratorfunction(fn) else None)
    if kind is not None:
        raise FlyteConfigError(
            field, getattr(fn, "__name__", fn),
            f"{kind} function (it has yield): a task returns one value, which Airflow stores as XCom",
            "return the values instead of yielding them, e.g. return list(...) (or collect them inside the task)",
        )


def check_op_args(field: str, value: Any) -> None:
    """``op_args``: a list or tuple of positional arguments (or an ``XComArg`` that renders to one)."""
    if value is None or _is_xcom_arg(value):
        return
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise FlyteConfigError(field, value, "not a list of positional arguments",
                               "pass a list, e.g. op_args=[1, 'a']; keyword arguments go in op_kwargs={'name': value}")


def check_op_kwargs(field: str, value: Any) -> None:
    """``op_kwargs``: a mapping of argument names to values (or an ``XComArg`` that renders to one)."""
    if value is None or _is_xcom_arg(value):
        return
    if not isinstance(value, Mapping):
        raise FlyteConfigError(field, value, "not a dict of argument names to values",
                               "pass a dict, e.g. op_kwargs={'n': 2}; positional arguments go in op_args=[...]")
    for name in value:
        if not isinstance(name, str):
            raise FlyteConfigError(f"{field}[{name!r}]", name, "an argument name must be a string",
                                   "use the function's parameter names as keys, e.g. op_kwargs={'n': 2}")


def _is_xcom_arg(value: Any) -> bool:
    from airflow.sdk.definitions._internal.mixins import ResolveMixin

    return isinstance(value, ResolveMixin)
