"""A server's fingerprint: the settings that can only be set when the server starts.

Two tasks share a server only when their fingerprints are equal: the engine, its start-up
settings (each engine's server module says which), the environment's env vars and image, the
Python interpreter and, for ``scope="run"``, the DAG run.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from typing import Any


def fingerprint(engine: str, server_settings: Mapping[str, Any], *, env_vars: Mapping[str, str],
                image: str | None, run_key: str | None) -> str:
    """A stable hex digest of everything a warm server of ``engine`` is started with."""
    data = {"engine": engine, "server": dict(server_settings), "env_vars": dict(sorted(env_vars.items())),
            "image": image, "python": sys.executable, "run": run_key}
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
