"""What every placement's Ray driver shares: its ``runtime_env`` in the log, the disconnect, SIGTERM's handler."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from airflow_provider_flyte.hygiene.signals import keep_signal_handlers


def loggable(runtime_env: Mapping[str, Any] | None) -> Any:
    """The runtime_env for the log, with env var values hidden (they may hold credentials)."""
    from airflow_provider_flyte.core.masking import redacted

    if not runtime_env or "env_vars" not in runtime_env:
        return redacted(runtime_env)
    # The values' placeholder is added after the masker saw the rest: registered as a secret itself, "***"
    # made Airflow warn "Skipping masking for a secret as it's too short" in every task log.
    rest = redacted({key: value for key, value in runtime_env.items() if key != "env_vars"})
    return {**rest, "env_vars": {key: "***" for key in runtime_env["env_vars"]}}


def shutdown(ray: Any) -> None:
    """Disconnect this driver; the cluster keeps running."""
    ray.shutdown()


def keep_sigterm_handler() -> contextlib.AbstractContextManager[None]:
    """``ray.init`` replaces the SIGTERM handler; keep Airflow's, which runs ``on_kill``."""
    return keep_signal_handlers("SIGTERM")
