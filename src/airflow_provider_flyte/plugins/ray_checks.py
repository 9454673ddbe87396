"""Checks of ``RayJobConfig`` fields Ray itself reports late: the address, ``runtime_env`` types, ``num-cpus``.

A Ray address with a bad port used to be replaced by the default port; ``runtime_env={"env_vars": {"A": 1}}``
failed inside ``ray.init``. Each is a :class:`~airflow_provider_flyte.exceptions.FlyteConfigError` when the
config is built.
"""

from __future__ import annotations

from airflow_provider_flyte.addresses import parse_address, shown
from airflow_provider_flyte.exceptions import FlyteConfigError

_ADDRESS_FIX = "use a Ray Client address (ray://host:10001) or the cluster's GCS address (host:6379)"


def check_ray_address(field: str, address: str | None) -> None:
    """``RayJobConfig.address``: ``auto``, ``local``, ``ray://h[:p]`` or ``[gcs://]h[:p]``; a bad port is an error."""
    if address is None or address.strip() in ("", "auto", "local"):
        return
    parsed = parse_address(field, address, default_scheme="gcs", fix=_ADDRESS_FIX)
    if parsed.scheme not in ("ray", "gcs"):
        raise FlyteConfigError(field, shown(address), "not a Ray address", _ADDRESS_FIX)


def check_runtime_env(runtime_env: dict | None) -> None:  # type: ignore[type-arg]
    """The runtime_env keys Ray checks only when the job starts: ``env_vars`` text, paths and lists."""
    if not runtime_env:
        return
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


def check_num_cpus(where: str, params: dict[str, str] | None) -> None:
    for key in ("num-cpus", "num_cpus"):
        if params and key in params:
            try:
                ok = float(params[key]) >= 0
            except ValueError:
                ok = False
            if not ok:
                raise FlyteConfigError(f"{where}.ray_start_params[{key!r}]", params[key], "not a number of CPUs",
                                       f'use a count such as {{"{key}": "2"}}')
