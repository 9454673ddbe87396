"""Dask worker and scheduler plugins that install a task's code bundle (a zip) on the cluster.

Only the standard library at import: this module runs inside the cluster's workers and
scheduler, which may have no Airflow (importing Airflow there can even crash). The hook
registers it to be pickled by value, so the cluster does not need this package either;
the ``distributed`` plugin base classes are imported when the classes are first built.

Each plugin carries the zip's bytes and their sha256. ``setup`` (workers, including those
that join later) and ``start`` (scheduler) write the zip once per digest under the
process's local folder, verify the sha256, and put the zip first on ``sys.path``
(``zipimport``). Removing the plugin takes it off ``sys.path`` again, and forgets the modules
imported from it, unless another task's plugin still uses the same bundle.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
from typing import Any

#: Folder under the worker's local directory (or the temp folder) holding installed bundles.
BUNDLE_DIR = "flyte-code-bundles"
_REFS_ATTR = "_flyte_code_bundle_refs"


def install_zip(data: bytes, sha256: str, name: str, parent: str) -> str:
    """Write ``data`` to ``parent/BUNDLE_DIR/name`` (once; atomically) after checking its sha256; return the path."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        raise ValueError(f"code bundle {name}: sha256 {actual} does not match the expected {sha256}")
    folder = os.path.join(parent, BUNDLE_DIR)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if os.path.isfile(path):
        with open(path, "rb") as existing:
            if hashlib.sha256(existing.read()).hexdigest() == sha256:
                return path
    fd, partial = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(partial, path)
    except BaseException:
        if os.path.exists(partial):
            os.unlink(partial)
        raise
    return path


def add_path(holder: Any, path: str, user: str) -> None:
    """Put ``path`` first on ``sys.path``, counting ``user`` (a plugin name) in ``holder``'s references."""
    refs = holder.__dict__.setdefault(_REFS_ATTR, {})
    refs.setdefault(path, set()).add(user)
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    importlib.invalidate_caches()


def drop_path(holder: Any, path: str, user: str) -> None:
    """Forget ``user``; take ``path`` off ``sys.path`` when no plugin uses it any more."""
    refs = holder.__dict__.setdefault(_REFS_ATTR, {})
    users = refs.get(path, set())
    users.discard(user)
    if users:
        return
    refs.pop(path, None)
    while path in sys.path:
        sys.path.remove(path)
    for key in [k for k in sys.path_importer_cache if k == path or k.startswith(path + os.sep)]:
        sys.path_importer_cache.pop(key, None)
    evict_modules(path)
    importlib.invalidate_caches()


def evict_modules(path: str) -> list[str]:
    """Forget the modules imported from ``path`` (a bundle), so later tasks import their own code."""
    prefix = path + os.sep
    gone = [name for name, module in list(sys.modules.items())
            if (getattr(module, "__file__", None) or "").startswith(prefix)]
    for name in gone:
        sys.modules.pop(name, None)
    return gone


def forget_user(holder: Any, user: str) -> None:
    """Drop every path ``user`` put on ``sys.path`` in this process (``holder``: the worker or scheduler)."""
    refs = holder.__dict__.setdefault(_REFS_ATTR, {})
    for path in [p for p, users in refs.items() if user in users]:
        drop_path(holder, path, user)


def forget_on_scheduler(user: str, dask_scheduler: Any = None) -> None:
    """``Client.run_on_scheduler`` target: the scheduler plugin ``user`` is removed, undo its path."""
    if dask_scheduler is not None:
        forget_user(dask_scheduler, user)


def bundle_plugins(data: bytes, sha256: str, digest: str, name: str) -> tuple[Any, Any]:
    """A ``(WorkerPlugin, SchedulerPlugin)`` pair installing the zip ``data`` (bundle ``digest``)."""
    worker_cls, scheduler_cls = _classes()
    return worker_cls(data, sha256, digest, name), scheduler_cls(data, sha256, digest, name)


def environ_plugin(values: dict[str, str], name: str) -> Any:
    """A ``WorkerPlugin`` setting ``values`` in every current and future worker's environment for one task
    (the OpenLineage parent of an existing cluster's workers, docs/lineage.md).

    Tasks sharing the workers may overlap and end in any order: each worker keeps, per variable, the value
    it had before any task and a stack of the tasks' values. A task's teardown takes its own value off; the
    variable is then the newest remaining task's value, or the original once no task is left.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class EnvironWorkerPlugin(WorkerPlugin):
        idempotent = True

        def __init__(self, values: dict[str, str], name: str) -> None:
            self.values, self.name = dict(values), name

        def setup(self, worker: Any) -> None:
            state = _environ_state(worker)
            for key, value in self.values.items():
                entry = state.setdefault(key, {"base": os.environ.get(key), "stack": []})
                entry["stack"] = [e for e in entry["stack"] if e[0] != self.name] + [(self.name, value)]
                os.environ[key] = value

        def teardown(self, worker: Any) -> None:
            state = _environ_state(worker)
            for key in self.values:
                entry = state.get(key)
                if entry is None:
                    continue
                entry["stack"] = [e for e in entry["stack"] if e[0] != self.name]
                if entry["stack"]:
                    os.environ[key] = entry["stack"][-1][1]
                    continue
                del state[key]
                if entry["base"] is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = entry["base"]

    return EnvironWorkerPlugin(values, name)


def _environ_state(worker: Any) -> dict[str, Any]:
    """Per worker process: variable -> its value before any task and the tasks' ``(plugin, value)`` stack."""
    state = getattr(worker, "_flyte_environ", None)
    if state is None:
        state = {}
        worker._flyte_environ = state
    return state


def _classes() -> tuple[type, type]:
    from distributed.diagnostics.plugin import SchedulerPlugin, WorkerPlugin

    class CodeBundleWorkerPlugin(WorkerPlugin):
        """On every current and future worker: the task's code bundle first on ``sys.path``.

        ``setup`` and ``teardown`` are plain synchronous code.
        """

        idempotent = True

        def __init__(self, data: bytes, sha256: str, digest: str, name: str) -> None:
            self.data, self.sha256, self.digest, self.name = data, sha256, digest, name
            self.path: str | None = None

        def setup(self, worker: Any) -> None:
            parent = getattr(worker, "local_directory", None) or tempfile.gettempdir()
            self.path = install_zip(self.data, self.sha256, f"{self.digest}.zip", parent)
            add_path(worker, self.path, self.name)

        def teardown(self, worker: Any) -> None:
            if self.path:
                drop_path(worker, self.path, self.name)

    class CodeBundleSchedulerPlugin(SchedulerPlugin):
        """On the scheduler: the task's code bundle first on its ``sys.path``."""

        idempotent = True

        def __init__(self, data: bytes, sha256: str, digest: str, name: str) -> None:
            self.data, self.sha256, self.digest, self.name = data, sha256, digest, name
            self.path: str | None = None
            self.scheduler: Any = None

        async def start(self, scheduler: Any) -> None:
            self.scheduler = scheduler
            self.path = install_zip(self.data, self.sha256, f"{self.digest}.zip", tempfile.gettempdir())
            add_path(scheduler, self.path, self.name)

        async def close(self) -> None:
            if self.path and self.scheduler is not None:
                drop_path(self.scheduler, self.path, self.name)

    return CodeBundleWorkerPlugin, CodeBundleSchedulerPlugin
