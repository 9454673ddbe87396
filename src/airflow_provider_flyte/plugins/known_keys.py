"""Keys an engine does not know: refused with a "did you mean" from the engine's own list.

The lists themselves live next to each engine's checks (``ray start``'s options, Ray's ``runtime_env``
fields, torch's rendezvous settings) as static copies, so that parsing a DAG imports no engine;
``tests/unit/plugins/test_known_keys.py`` compares each with the installed engine's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from airflow_provider_flyte.exceptions import FlyteConfigError


def did_you_mean(key: str, known: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The known key closest to ``key`` (``numcpus`` -> ``num-cpus``), or ``None`` when none is close."""
    import difflib  # only when a key is unknown: not at every DAG parse

    public = [name for name in known if not name.startswith("_")]
    close = difflib.get_close_matches(key, public, n=1, cutoff=cutoff)
    return close[0] if close else None


def check_known_keys(field: str, keys: Iterable[Any], known: Collection[str], *, problem: str, fix: str) -> None:
    """Each string key of ``keys`` is in ``known``; else ``<field>[key]: <problem>`` with a "did you mean"."""
    for key in keys:
        if isinstance(key, str) and key not in known:
            close = did_you_mean(key, known)
            hint = f"did you mean {close!r}? Otherwise " if close else ""
            raise FlyteConfigError(f"{field}[{key!r}]", key, problem, hint + fix)
