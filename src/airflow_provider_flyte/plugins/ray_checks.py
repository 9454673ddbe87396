"""Checks of ``RayJobConfig`` fields Ray itself reports late: the address, ``runtime_env``, ``ray_start_params``.

A Ray address with a bad port used to be replaced by the default port; ``runtime_env={"env_vars": {"A": 1}}``
failed inside ``ray.init``; a ``runtime_env`` key ``pipp`` was ignored with a warning in the job's log; a
``ray_start_params`` key ``numcpus`` (or ``{"num-gpus": "x"}``) was ignored locally and failed ``ray start`` on
Kubernetes. Each is a :class:`~airflow_provider_flyte.exceptions.FlyteConfigError` when the config is built.

The lists of known keys are static copies of Ray's (no Ray import at parse time);
``tests/unit/plugins/test_known_keys.py`` compares them with the installed Ray's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from airflow_provider_flyte.core.addresses import parse_address, shown
from airflow_provider_flyte.core.bounds import check_cpus_per_worker
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.known_keys import check_known_keys

_ADDRESS_FIX = "use a Ray Client address (ray://host:10001) or the cluster's GCS address (host:6379)"


def check_ray_address(field: str, address: str | None) -> None:
    """``RayJobConfig.address``: ``auto``, ``local``, ``ray://h[:p]`` or ``[gcs://]h[:p]``; a bad port is an error."""
    if address is None or address.strip() in ("", "auto", "local"):
        return
    parsed = parse_address(field, address, default_scheme="gcs", fix=_ADDRESS_FIX)
    if parsed.scheme not in ("ray", "gcs"):
        raise FlyteConfigError(field, shown(address), "not a Ray address", _ADDRESS_FIX)


#: ``ray.runtime_env.RuntimeEnv.known_fields``: the ``runtime_env`` keys Ray reads (others go to plugins).
RUNTIME_ENV_FIELDS = frozenset({
    "py_modules", "py_executable", "java_jars", "working_dir", "conda", "pip", "uv", "container", "excludes",
    "env_vars", "_ray_release", "_ray_commit", "_inject_current_ray", "config", "worker_process_setup_hook",
    "_nsight", "_rocprof_sys", "image_uri",
})
#: ``ray.runtime_env.RuntimeEnvConfig.known_fields``: the keys of ``runtime_env["config"]``.
RUNTIME_ENV_CONFIG_FIELDS = frozenset({"setup_timeout_seconds", "eager_install", "log_files"})


def _public(names: frozenset[str]) -> str:
    return ", ".join(sorted(name for name in names if not name.startswith("_")))


def check_runtime_env(runtime_env: dict | None) -> None:  # type: ignore[type-arg]
    """The runtime_env keys Ray checks only when the job starts: known keys, ``env_vars`` text, paths and lists."""
    if not runtime_env:
        return
    check_known_keys("RayJobConfig.runtime_env", runtime_env, RUNTIME_ENV_FIELDS,
                     problem="not a runtime_env field Ray knows (Ray would ignore it with a warning in the job's log)",
                     fix=f"use one of {_public(RUNTIME_ENV_FIELDS)}")
    config = runtime_env.get("config")
    if isinstance(config, Mapping):
        check_known_keys("RayJobConfig.runtime_env['config']", config, RUNTIME_ENV_CONFIG_FIELDS,
                         problem="not a runtime_env config field Ray knows (Ray would ignore it)",
                         fix=f"use one of {_public(RUNTIME_ENV_CONFIG_FIELDS)}")
    env_vars = runtime_env.get("env_vars")
    if env_vars is not None and not (isinstance(env_vars, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in env_vars.items())):
        raise FlyteConfigError("RayJobConfig.runtime_env['env_vars']", env_vars,
                               "Ray needs a dict of string names to string values",
                               "quote the values, e.g. {'env_vars': {'OMP_NUM_THREADS': '4'}}")
    for key, types, example in (("working_dir", (str,), "'./project'"), ("py_modules", (list, tuple), "['./pkg']"),
                                ("pip", (list, tuple, str, dict), "['requests==2.32.3']")):
        value = runtime_env.get(key)
        if value is not None and not isinstance(value, types):
            names = " or ".join(t.__name__ for t in types if t is not tuple)
            raise FlyteConfigError(f"RayJobConfig.runtime_env[{key!r}]", value, f"Ray needs a {names} here",
                                   f"use e.g. {{{key!r}: {example}}}")


#: ``ray start``'s options (``ray.scripts.scripts.start``), without the leading ``--``, and the kind of value
#: each takes: a click type name, ``"flag"`` (KubeRay passes ``--opt`` for "true" and nothing for "false"),
#: ``"json"``, or the choices.
RAY_START_OPTIONS: dict[str, str | tuple[str, ...]] = {
    "node-ip-address": "text", "address": "text", "port": "integer", "node-name": "text",
    "redis-username": "text", "redis-password": "text", "redis-shard-ports": "text",
    "object-manager-port": "integer", "node-manager-port": "integer", "min-worker-port": "integer",
    "max-worker-port": "integer", "worker-port-list": "text", "ray-client-server-port": "integer",
    "memory": "integer", "object-store-memory": "integer", "num-cpus": "integer", "num-gpus": "integer",
    "resources": "text", "head": "flag", "include-dashboard": "boolean", "dashboard-host": "text",
    "dashboard-port": "integer", "dashboard-agent-listen-port": "integer", "dashboard-agent-grpc-port": "integer",
    "runtime-env-agent-port": "integer", "block": "flag", "plasma-directory": "text",
    "object-spilling-directory": "text", "autoscaling-config": "text", "no-redirect-output": "flag",
    "temp-dir": "text", "system-config": "json", "enable-object-reconstruction": "flag",
    "metrics-export-port": "integer", "no-monitor": "flag", "tracing-startup-hook": "text",
    "ray-debugger-external": "flag", "disable-usage-stats": "flag", "labels": "text", "labels-file": "text",
    "include-log-monitor": "boolean", "enable-resource-isolation": "flag", "system-reserved-cpu": "float",
    "system-reserved-memory": "integer", "cgroup-path": "text", "proxy-server-url": "text",
    "log-style": ("auto", "record", "pretty"), "log-color": ("auto", "false", "true"), "verbose": "flag",
}
#: click's words for a boolean.
_BOOL_WORDS = ("1", "0", "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off")
#: What each kind of value is, and an example.
_KINDS = {
    "integer": ("a whole number", "2"), "float": ("a number", "0.5"), "boolean": ("true or false", "true"),
    "flag": ('"true" (adds the flag) or "false"', "true"), "json": ("a JSON object", "{}"),
}
_COUNTED = {"num-cpus": "CPUs", "num-gpus": "GPUs"}


def check_ray_start_params(where: str, params: Mapping[str, str] | None) -> None:
    """Each key is a ``ray start`` option, and its value one that option takes (``num-cpus`` a sane count)."""
    if not params:
        return
    field = f"{where}.ray_start_params"
    check_known_keys(field, params, RAY_START_OPTIONS,
                     problem="not a `ray start` option (Ray would ignore it locally and refuse to start the node on "
                             "Kubernetes)",
                     fix="use an option of `ray start --help` without the leading --, e.g. {'num-cpus': '2'}")
    for key, value in params.items():
        _check_start_value(f"{field}[{key!r}]", key, str(value).strip())


def _check_start_value(field: str, key: str, value: str) -> None:
    kind = RAY_START_OPTIONS[key]
    if _takes(kind, value):
        if key == "num-cpus":
            check_cpus_per_worker(field, value, int(value))
        return
    if key in _COUNTED:
        raise FlyteConfigError(field, value, f"not a number of {_COUNTED[key]}",
                               f'use a count such as {{"{key}": "2"}}')
    if isinstance(kind, tuple):
        raise FlyteConfigError(field, value, f"ray start --{key} takes one of {', '.join(kind)}",
                               f'use e.g. {{"{key}": "{kind[0]}"}}')
    what, example = _KINDS[kind]
    raise FlyteConfigError(field, value, f"ray start --{key} takes {what}", f'use e.g. {{"{key}": "{example}"}}')


def _takes(kind: str | tuple[str, ...], value: str) -> bool:
    """Whether ``ray start`` would accept ``value`` for an option of this kind."""
    if isinstance(kind, tuple):
        return value.lower() in kind
    checks = {
        "integer": lambda: int(value) >= 0,
        "float": lambda: math.isfinite(float(value)),
        "boolean": lambda: value.lower() in _BOOL_WORDS,
        "flag": lambda: value.lower() in ("true", "false"),
        "json": lambda: isinstance(json.loads(value), dict),
    }
    if kind not in checks:  # text
        return True
    try:
        return bool(checks[kind]())
    except ValueError:
        return False
