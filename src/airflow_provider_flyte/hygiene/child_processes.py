"""Let engines spawn worker processes from inside a real Airflow task.

Inside a task process Airflow blocks metadata-DB access by setting
``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow-db-not-allowed:///``, and ``__main__`` is the
``airflow`` command. Python's ``spawn`` start method (Dask nannies, torch elastic workers)
re-runs ``__main__`` in each child, and any child that imports Airflow crashes on that URL.
:func:`spawn_safe` hides ``__main__``'s file/spec and gives children an in-memory SQLite
URL (they can import Airflow but still reach no metadata DB) while workers start.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

_BLOCKED_DB_URL = "airflow-db-not-allowed:///"
_DB_URL_VARS = ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CORE__SQL_ALCHEMY_CONN")
_NO_DB_URL = "sqlite://"


@contextlib.contextmanager
def spawn_safe() -> Iterator[None]:
    """Within the block, spawned children neither re-run ``__main__`` nor crash importing Airflow."""
    main = sys.modules.get("__main__")
    saved_main: dict[str, object] = {}
    if main is not None:
        for attr in ("__file__", "__spec__"):
            if attr in main.__dict__:
                saved_main[attr] = main.__dict__[attr]
        main.__dict__.pop("__file__", None)
        if "__spec__" in saved_main:
            main.__dict__["__spec__"] = None
    saved_env = {key: os.environ.get(key) for key in _DB_URL_VARS}
    for key, value in saved_env.items():
        if value == _BLOCKED_DB_URL:
            os.environ[key] = _NO_DB_URL
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved_main)
        for key, value in saved_env.items():
            if value == _BLOCKED_DB_URL:
                os.environ[key] = value
