"""``ReusePolicy``: Flyte's reuse policy, the warm-engine settings of a ``TaskEnvironment``.

Field names, defaults and rules are flyte-sdk 2.12's (``flyte._reusable_environment``): ``replicas``
(an int or ``(min, max)``, default 2), ``idle_ttl`` (seconds or timedelta, at least 30, default 30),
``concurrency`` (default 1), ``scaledown_ttl`` (at least 30, default 30), ``scope`` (``"global"`` or
``"run"``). On Airflow a reused environment is a warm engine server on the worker machine
(docs/warm-engines.md). :func:`check_reuse` refuses engines the engine table does not keep warm
(Elastic) and calls the config's own ``check_reuse()`` (Ray: one replica, concurrency 1, no RayJob
shutdown/TTL; Spark: no warm-server-owned properties), each with Flyte's message.

A config-layer module: it imports no hook, runner or engine; it reads the engine table.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow_provider_flyte.core import engines
from airflow_provider_flyte.exceptions import FlyteConfigError

log = logging.getLogger(__name__)

#: Flyte's minimum for ``idle_ttl`` and ``scaledown_ttl``.
MIN_TTL_S = 30
#: Warm servers per fingerprint: each replica is a whole engine (a JVM, a Ray instance, a Dask cluster) on the
#: one Airflow worker machine, so more than this never fit it.
MAX_REPLICAS = 64
#: Tasks attached to one server at once: far more than one Airflow worker runs at once (default parallelism: 32).
MAX_CONCURRENCY = 256
_SCOPES = ("global", "run")


@dataclass
class ReusePolicy:
    """Keep the task's engine warm between tasks: ``flyte.ReusePolicy`` for Airflow.

    :param replicas: warm servers per fingerprint: ``n`` or ``(min, max)``; at most ``max`` run at once.
    :param idle_ttl: a server with no task attached for this long is stopped (seconds or timedelta, >= 30).
    :param concurrency: tasks attached to one server at once.
    :param scaledown_ttl: an idle server beyond ``min`` replicas is stopped after this long (>= 30).
    :param scope: ``"global"`` shares servers across DAG runs; ``"run"`` keeps them to one DAG run.
    """

    replicas: int | tuple[int, int] = 2
    idle_ttl: int | timedelta = 30
    concurrency: int = 1
    scaledown_ttl: int | timedelta = 30
    scope: str = "global"

    def __post_init__(self) -> None:
        if self.scope not in _SCOPES:
            raise FlyteConfigError("ReusePolicy.scope", self.scope, 'scope must be "global" or "run"',
                                   'pass scope="global" (share across runs) or scope="run"')
        self.replicas = _replicas(self.replicas)
        self.idle_ttl = _ttl("idle_ttl", self.idle_ttl)
        self.scaledown_ttl = _ttl("scaledown_ttl", self.scaledown_ttl)
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise FlyteConfigError("ReusePolicy.concurrency", self.concurrency,
                                   "concurrency must be an int of at least 1 (tasks attached to one server at once)",
                                   "pass concurrency=1 (the default) or more")
        if self.concurrency > MAX_CONCURRENCY:
            raise FlyteConfigError("ReusePolicy.concurrency", self.concurrency,
                                   f"concurrency must be at most {MAX_CONCURRENCY}: one Airflow worker never runs that "
                                   "many tasks at once (its default parallelism is 32)", "pass a realistic concurrency, "
                                   "e.g. concurrency=4; to run more tasks at once, raise replicas")
        if self.replicas[1] == 1 and self.concurrency == 1:
            log.debug("ReusePolicy with one replica and concurrency 1: a second task waits for the first "
                      "or runs cold")

    @property
    def min_replicas(self) -> int:
        return self.replicas[0]  # type: ignore[index]

    @property
    def max_replicas(self) -> int:
        return self.replicas[1]  # type: ignore[index]

    @property
    def idle_ttl_s(self) -> float:
        return self.idle_ttl.total_seconds()  # type: ignore[union-attr]

    @property
    def scaledown_ttl_s(self) -> float:
        return self.scaledown_ttl.total_seconds()  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (the task spec carries it)."""
        return {"replicas": list(self.replicas), "idle_ttl": self.idle_ttl_s,  # type: ignore[arg-type]
                "concurrency": self.concurrency, "scaledown_ttl": self.scaledown_ttl_s, "scope": self.scope}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReusePolicy:
        return cls(replicas=tuple(data["replicas"]),  # type: ignore[arg-type]
                   idle_ttl=timedelta(seconds=float(data["idle_ttl"])), concurrency=int(data["concurrency"]),
                   scaledown_ttl=timedelta(seconds=float(data["scaledown_ttl"])), scope=str(data["scope"]))


def _replicas(value: Any) -> tuple[int, int]:
    field = "ReusePolicy.replicas"
    if value is None:
        raise FlyteConfigError(field, value, "replicas cannot be None", "pass an int, e.g. replicas=2, or (min, max)")
    if isinstance(value, list):
        value = tuple(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value, value)
    if not (isinstance(value, tuple) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)):
        raise FlyteConfigError(field, value, "replicas must be an int or a tuple of two ints",
                               "pass replicas=2 or replicas=(1, 3)")
    low, high = value
    if low < 0 or high < 1:
        raise FlyteConfigError(field, value, "replicas must allow at least one server (min >= 0, max >= 1)",
                               "pass replicas=1, replicas=2 or replicas=(0, 2)")
    if low > high:
        raise FlyteConfigError(field, value, f"the minimum ({low}) is above the maximum ({high})",
                               f"pass (min, max) with min <= max, e.g. replicas=({high}, {low})")
    if high > MAX_REPLICAS:
        raise FlyteConfigError(field, value, f"replicas must be at most {MAX_REPLICAS}: each replica is a whole warm "
                               "engine server on the Airflow worker machine, and more do not fit one machine",
                               "pass replicas=2, or (min, max) such as replicas=(1, 4)")
    return (low, high)


def _ttl(name: str, value: Any) -> timedelta:
    field = f"ReusePolicy.{name}"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = _seconds(field, name, value)
    elif not isinstance(value, timedelta):
        raise FlyteConfigError(field, value, f"{name} must be an int (seconds) or a timedelta",
                               f"pass {name}=60 or {name}=timedelta(minutes=1)")
    if value.total_seconds() < MIN_TTL_S:
        raise FlyteConfigError(field, value.total_seconds(), f"{name} must be at least {MIN_TTL_S} seconds",
                               f"pass {name}={MIN_TTL_S} or more")
    return value


def _seconds(field: str, name: str, value: float) -> timedelta:
    """A number of seconds as a ``timedelta``: finite, and no longer than ``timedelta`` holds (~2.7 million years)."""
    fix = f"pass a number of seconds, e.g. {name}=300 or {name}=timedelta(hours=1)"
    if not math.isfinite(value):
        raise FlyteConfigError(field, value, f"{name} must be a finite number of seconds", fix)
    try:
        return timedelta(seconds=value)
    except OverflowError:
        raise FlyteConfigError(field, value, f"{name} is longer than a timedelta holds", fix) from None


def as_policy(value: Any, *, field: str) -> ReusePolicy | None:
    """``value`` as a policy: ``None``/``"off"`` are no reuse; anything but a ``ReusePolicy`` is refused."""
    if value is None or value == "off":
        return None
    if isinstance(value, ReusePolicy):
        return value
    if isinstance(value, dict):
        return ReusePolicy.from_dict(value)
    raise FlyteConfigError(field, value, f"Expected reusable to be of type ReusePolicy, got {type(value)}",
                           "pass reusable=ReusePolicy(replicas=1, idle_ttl=300), or reusable='off'")


def check_reuse(policy: ReusePolicy | None, config: Any, *, supports_reuse: bool, field: str) -> None:
    """The reuse rules for ``config`` (a plugin config, not a template), at parse time.

    ``supports_reuse`` is the engine table's word on whether the engine can be kept warm at all; the
    engine's own rules are its config's :meth:`~airflow_provider_flyte.plugins.base.PluginConfig.check_reuse`.
    """
    if policy is None or config is None:
        return
    if not supports_reuse:
        warm = [entry.config_name for entry in engines.entries() if entry.supports_reuse]
        listed = " and ".join([", ".join(warm[:-1]), warm[-1]] if len(warm) > 1 else warm) or "no"
        raise FlyteConfigError(field, type(config).__name__, "Cannot set plugin_config when environment is reusable.",
                               f"drop reusable=..., or run the {type(config).__name__} task in an environment of "
                               f"its own (only {listed} engines can be kept warm)")
    check = getattr(config, "check_reuse", None)
    if check is not None:
        check(policy)
