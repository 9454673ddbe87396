"""The static lists of keys the config checks use match the installed engines' own lists.

Parsing a DAG must not import Ray or torch, so the checks keep copies of ``ray start``'s options, Ray's
``runtime_env`` fields and the settings torch's rendezvous reads. These tests read the engines' lists (importing
the engine is fine here) so that an engine upgrade that adds, removes or retypes a key fails a test instead of
making the checks refuse good input or accept a typo.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from airflow_provider_flyte.plugins.pytorch import RDZV_CONFIG_KEYS
from airflow_provider_flyte.plugins.ray_checks import (
    RAY_START_OPTIONS,
    RUNTIME_ENV_CONFIG_FIELDS,
    RUNTIME_ENV_FIELDS,
)


def _click_kind(option) -> str | tuple[str, ...]:  # type: ignore[no-untyped-def]
    """The kind of value a ``ray start`` click option takes, in RAY_START_OPTIONS' terms."""
    import click

    if option.is_flag or getattr(option, "count", False):
        return "flag"
    if isinstance(option.type, click.Choice):
        return tuple(option.type.choices)
    if isinstance(option.type, click.types.FuncParamType):
        assert option.type.func.__name__ == "loads", option.type.func  # json.loads
        return "json"
    return str(option.type.name)


def test_ray_start_options_are_ray_s():
    from ray.scripts.scripts import start

    rays = {next(o for o in option.opts if o.startswith("--"))[2:]: _click_kind(option) for option in start.params}
    assert rays == RAY_START_OPTIONS


def test_runtime_env_fields_are_ray_s():
    from ray.runtime_env.runtime_env import RuntimeEnv, RuntimeEnvConfig

    assert set(RuntimeEnv.known_fields) == RUNTIME_ENV_FIELDS
    assert set(RuntimeEnvConfig.known_fields) == RUNTIME_ENV_CONFIG_FIELDS


#: How torch's rendezvous code reads a setting: ``params.get_as_int("read_timeout", 60)``,
#: ``params.config.get("cert")``, ``params.get("store_type", "tcp")``, ``_get_timeout(params, "join")``.
_READS = re.compile(r'params\.(?:config\.)?get(?:_as_\w+)?\(\s*"(\w+)"')
_TIMEOUTS = re.compile(r'_get_timeout\(params, "(\w+)"\)')


def _keys_read_by(*modules: object) -> set[str]:
    source = "".join(inspect.getsource(module) for module in modules)  # type: ignore[arg-type]
    return set(_READS.findall(source)) | {f"{name}_timeout" for name in _TIMEOUTS.findall(source)}


def test_rdzv_configs_keys_are_those_torch_s_rendezvous_reads():
    from torch.distributed.elastic.rendezvous import (
        c10d_rendezvous_backend,
        dynamic_rendezvous,
        etcd_rendezvous,
        etcd_rendezvous_backend,
    )
    from torch.distributed.launcher import api as launcher

    # The launcher sets and documents rdzv_configs["timeout"] for every backend.
    assert re.search(r'rdzv_configs\["timeout"\]', Path(launcher.__file__).read_text())
    assert {
        "c10d": _keys_read_by(dynamic_rendezvous, c10d_rendezvous_backend) | {"timeout"},
        "etcd-v2": _keys_read_by(dynamic_rendezvous, etcd_rendezvous_backend) | {"timeout"},
        "etcd": _keys_read_by(etcd_rendezvous) | {"timeout"},
    } == RDZV_CONFIG_KEYS
