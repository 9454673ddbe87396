"""The code that runs inside PyTorch Elastic worker processes, and the agent-side helpers around it.

Workers are spawned by torch's elastic agent and import :func:`run_worker` by name, so this
module stays light: torch is imported inside functions only, and the user's function arrives
as cloudpickle bytes (functions defined in a DAG file are not importable by name).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

from airflow_provider_flyte.plugins.pytorch import COLLECTIVE_TIMEOUT_ENV

log = logging.getLogger(__name__)

#: torch.multiprocessing.spawn names the file a raising worker's traceback goes to ``<tmp>/pytorch-errorfile-*.pickle``.
SPAWN_ERROR_FILE = ("pytorch-errorfile-", ".pickle")
#: Seconds between two zombie checks of the watchdog (flyte-sdk uses 10 s).
ZOMBIE_CHECK_INTERVAL_S = 10.0
_PR_SET_PDEATHSIG = 1


# -- worker side ----------------------------------------------------------------------------------
def run_worker(project_root: str | None, payload: bytes, agent_pid: int, report_dir: str | None = None) -> bytes | None:
    """Entry point of every worker: unpickle the task's call and run it; rank 0 returns its result.

    The result travels back pickled with cloudpickle (it may be an object of a class
    defined in the DAG file); other ranks return ``None``. A rank that raises leaves a
    report in ``report_dir`` (torch's own error only names the first rank it notices).
    """
    _die_with_agent(agent_pid)
    if project_root and project_root not in sys.path:
        sys.path.insert(0, project_root)
    apply_collective_timeout()

    import cloudpickle

    from airflow_provider_flyte.context import task_context

    try:
        call = cloudpickle.loads(payload)
        with task_context(call["context"]):
            result = _call(call["fn"], call["args"], call["kwargs"])
    except BaseException as exc:
        if report_dir and not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            _report_failure(report_dir, exc)
        raise
    if int(os.environ.get("RANK", "0")) != 0:
        return None
    try:
        return cloudpickle.dumps(result)  # type: ignore[no-any-return]
    except Exception as exc:
        raise TypeError(
            f"rank 0 returned a {type(result).__name__} that cannot be sent back to the task: {exc}. "
            "Return plain values (numbers, strings, lists, dicts, tensors moved to CPU)."
        ) from exc


def _report_failure(report_dir: str, exc: BaseException) -> None:
    report = {
        "rank": int(os.environ.get("RANK", "-1")),
        "restart": int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")),
        "pid": os.getpid(),
        "message": f"{type(exc).__name__}: {exc}",
        "time": time.time(),
        "spawn_error_file": spawn_error_file(),
    }
    try:
        path = os.path.join(report_dir, f"failure-{report['restart']}-{report['rank']}.json")
        with open(path, "w") as f:
            json.dump(report, f)
    except OSError:
        pass


def read_failure_reports(report_dir: str) -> list[dict[str, Any]]:
    """The reports of the last attempt that left any, sorted by rank."""
    reports = _all_failure_reports(report_dir)
    if not reports:
        return []
    last = max(r["restart"] for r in reports)
    return sorted((r for r in reports if r["restart"] == last), key=lambda r: r["rank"])


def _all_failure_reports(report_dir: str) -> list[dict[str, Any]]:
    reports = []
    try:
        names = [n for n in os.listdir(report_dir) if n.startswith("failure-") and n.endswith(".json")]
    except OSError:
        return []
    for name in names:
        try:
            with open(os.path.join(report_dir, name)) as f:
                reports.append(json.load(f))
        except (OSError, ValueError):
            continue
    return reports


def spawn_error_file() -> str | None:
    """The file torch's spawn wrapper writes this worker's traceback to when the worker raises.

    ``torch.multiprocessing.spawn`` passes it as the last argument of the worker process's target
    and leaves it in the agent's temp dir: the failure report names it so the agent removes it.
    """
    import multiprocessing

    args = getattr(multiprocessing.current_process(), "_args", ())
    path = args[-1] if args else None
    return path if isinstance(path, str) and _is_spawn_error_file(path) else None


def remove_spawn_error_files(report_dir: str) -> None:
    """Remove the traceback files torch's spawn left for the workers that raised (named in their reports)."""
    for report in _all_failure_reports(report_dir):
        path = report.get("spawn_error_file")
        if isinstance(path, str) and _is_spawn_error_file(path):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _is_spawn_error_file(path: str) -> bool:
    prefix, suffix = SPAWN_ERROR_FILE
    name = os.path.basename(path)
    return name.startswith(prefix) and name.endswith(suffix)


def apply_collective_timeout() -> None:
    """Set torch's default NCCL collective timeout from ``FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC``.

    Both names are patched: ``distributed_c10d`` binds its own copy with ``from constants import``.
    """
    seconds = os.environ.get(COLLECTIVE_TIMEOUT_ENV)
    if not seconds:
        return
    from datetime import timedelta

    import torch.distributed.constants
    import torch.distributed.distributed_c10d

    timeout = timedelta(seconds=int(seconds))
    torch.distributed.constants.default_pg_nccl_timeout = timeout
    torch.distributed.distributed_c10d.default_pg_nccl_timeout = timeout


def _call(fn: Any, args: Any, kwargs: Any) -> Any:
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        return asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _die_with_agent(agent_pid: int) -> None:
    """Have the kernel kill this worker when the agent dies (Airflow's SIGKILL, a watchdog exit)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except Exception:  # not fatal: the agent's own cleanup still stops the workers
        return
    if os.getppid() != agent_pid:  # the agent died before prctl took effect
        os._exit(1)


# -- agent side: the zombie watchdog --------------------------------------------------------------
def start_zombie_watchdog(nproc: int, interval: float | None = None) -> threading.Event:
    """Force-exit this process when at least ``nproc`` of its children are zombies.

    torch's elastic agent can deadlock in ``multiprocessing.Event.set()`` when all workers
    die at once (e.g. NCCL aborts after a CUDA OOM): it never reaps them and never returns.
    The thread checks ``/proc`` every :data:`ZOMBIE_CHECK_INTERVAL_S` seconds. Set the
    returned event to stop it.
    """
    stop = threading.Event()
    period = ZOMBIE_CHECK_INTERVAL_S if interval is None else interval
    my_pid = os.getpid()

    def watch() -> None:
        while not stop.wait(period):
            zombies = zombie_children(my_pid)
            if len(zombies) >= nproc:
                log.error(
                    "Zombie watchdog: %d worker processes are zombies (PIDs %s); the PyTorch elastic "
                    "agent is deadlocked. Force-exiting the task process.", len(zombies), zombies,
                )
                for handler in logging.getLogger().handlers:
                    handler.flush()
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="flyte-elastic-zombie-watchdog").start()
    return stop


def zombie_children(parent_pid: int) -> list[int]:
    """PIDs of ``parent_pid``'s direct children in state ``Z`` (read from ``/proc/<pid>/status``)."""
    return [pid for pid, state in _children(parent_pid) if state == "Z"]


def _children(parent_pid: int) -> list[tuple[int, str]]:
    found = []
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        status = _status(int(entry))
        if status and status.get("PPid") == str(parent_pid):
            found.append((int(entry), status.get("State", "?")[:1]))
    return found


def _status(pid: int) -> dict[str, str] | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
    except (OSError, ValueError):
        return None


# -- agent side: leftover workers -------------------------------------------------------------------
def is_spawned_worker(proc: Any) -> bool:
    """A process started by ``multiprocessing`` spawn (the elastic workers look like that)."""
    return any("spawn_main" in arg for arg in proc.cmdline())


def stop_new_workers(before: Iterable[int], grace_s: float = 10.0) -> None:
    """SIGTERM the spawned workers started since ``before`` (and their descendants), SIGKILL what is left."""
    from airflow_provider_flyte.hygiene.processes import stop_new_descendants

    stop_new_descendants(before, match=is_spawned_worker, grace_s=grace_s, what="leftover PyTorch worker process")
