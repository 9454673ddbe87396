"""Where a task's code lives, and how its functions travel to engine workers.

Airflow imports a DAG file under a generated module name (``unusual_prefix_<sha1>_<file>``)
and puts the bundle root on ``sys.path``. Two consequences for engines:

* functions defined in the DAG file are not importable by name in another process,
  so they must be pickled *by value* (:func:`register_by_value`);
* helper modules next to the DAG file are importable only where the project root is
  on ``sys.path`` (locally: ``PYTHONPATH``; on a cluster: the code bundle).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any


def project_root(dag_file: str | None, include: Iterable[str] = ()) -> Path | None:
    """The folder whose contents form the task's code.

    The Airflow DAG folder when it contains the DAG file; otherwise the deepest ``sys.path``
    entry that contains it (the bundle root Airflow added); otherwise the DAG file's own folder.
    ``include`` does not move the root (Flyte adds included files *next to* the code; they are
    checked to lie inside this root when the ``TaskEnvironment`` is built); the argument is kept
    for callers that pass it.
    """
    del include
    if not dag_file:
        return None
    dag_path = Path(dag_file).resolve()
    configured = _configured_dags_folder()
    candidates = [configured] if configured is not None else []
    candidates += sorted(
        (Path(p or os.getcwd()).resolve() for p in sys.path if not p.endswith((".zip", ".egg"))),
        key=lambda p: len(p.parts),
        reverse=True,
    )
    for candidate in candidates:
        if candidate != Path(candidate.anchor) and _contains(candidate, dag_path):
            return candidate
    return dag_path.parent


def _configured_dags_folder() -> Path | None:
    try:
        from airflow.configuration import conf

        folder = conf.get("core", "dags_folder", fallback=None)
    except Exception:
        return None
    return Path(folder).expanduser().resolve() if folder else None


def _contains(folder: Path, path: Path) -> bool:
    try:
        path.relative_to(folder)
    except ValueError:
        return False
    return "site-packages" not in folder.parts and "dist-packages" not in folder.parts


def is_importable_by_name(module_name: str) -> bool:
    """Whether a fresh interpreter with the project root on its path could import the module."""
    if module_name == "__main__" or module_name.startswith("unusual_prefix_"):
        return False
    module = sys.modules.get(module_name)
    if module is not None and getattr(module, "__spec__", None) is None:
        return False
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def modules_to_pickle_by_value(fn: Callable[..., Any]) -> list[ModuleType]:
    """The modules of ``fn`` that other processes cannot import by name."""
    fn = getattr(fn, "__wrapped__", fn)
    name = getattr(fn, "__module__", None)
    if not name or is_importable_by_name(name):
        return []
    module = sys.modules.get(name)
    return [module] if module is not None else []


def register_by_value(fn: Callable[..., Any] | None, cloudpickle_module: Any) -> Callable[[], None]:
    """Make ``cloudpickle_module`` (an engine's own copy) pickle ``fn``'s DAG module by value.

    Returns the undo, which unregisters exactly the modules this call registered (so a
    long-lived process does not keep pickling one task's modules by value for the next).
    """
    added: list[ModuleType] = []
    registered = set(cloudpickle_module.list_registry_pickle_by_value())
    for module in modules_to_pickle_by_value(fn) if fn is not None else []:
        if module.__name__ in registered:
            continue
        try:
            cloudpickle_module.register_pickle_by_value(module)
        except ValueError:  # already registered, or not in sys.modules by that name
            continue
        added.append(module)

    def undo() -> None:
        for module in added:
            with contextlib.suppress(ValueError):
                cloudpickle_module.unregister_pickle_by_value(module)
        added.clear()

    return undo


def prepend_path(existing: str | None, *entries: str) -> str:
    """``entries`` then ``existing`` as an ``os.pathsep`` list, without duplicates."""
    parts: list[str] = []
    for part in [*entries, *(existing.split(os.pathsep) if existing else [])]:
        if part and part not in parts:
            parts.append(part)
    return os.pathsep.join(parts)
