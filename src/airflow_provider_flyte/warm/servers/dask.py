"""A warm Dask server: ``dask scheduler`` plus ``dask worker --nworkers N`` (with nannies), on 127.0.0.1.

Start-up settings (the fingerprint): ``n_workers``, ``threads_per_worker``, ``memory_limit``.
Dask has no shared-secret option (only TLS certificates): the scheduler listens on loopback only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.warm.servers import Started, executable, launch, server_env, wait_for

START_TIMEOUT_S = 120


def start(params: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> Started:
    dask = executable("dask")
    tmp = folder / "tmp"  # the scheduler's copy of each code bundle (and any temp file) goes with the server
    tmp.mkdir(exist_ok=True)
    penv = server_env(folder, env, TMPDIR=str(tmp))
    scheduler_file = folder / "scheduler.json"
    procs = [launch(folder, "scheduler", [dask, "scheduler", "--host", "127.0.0.1", "--port", "0",
                                          "--dashboard-address", "127.0.0.1:0",
                                          "--scheduler-file", str(scheduler_file)], penv)]

    def address() -> str | None:
        try:
            return str(json.loads(scheduler_file.read_text())["address"])
        except (OSError, ValueError, KeyError):
            return None

    addr = wait_for(address, "Dask scheduler", procs, folder, START_TIMEOUT_S)
    n_workers = int(params.get("n_workers", 1))
    if n_workers > 0:
        argv = [dask, "worker", addr, "--nworkers", str(n_workers), "--host", "127.0.0.1", "--no-dashboard",
                "--local-directory", str(folder / "workers"), "--nanny"]
        if params.get("threads_per_worker"):
            argv += ["--nthreads", str(params["threads_per_worker"])]
        if params.get("memory_limit"):
            argv += ["--memory-limit", str(params["memory_limit"])]
        procs.append(launch(folder, "workers", argv, penv))

        def workers_up() -> bool:
            from distributed import Client

            try:
                with Client(addr, timeout=5) as client:
                    return len(client.scheduler_info(n_workers=-1)["workers"]) >= n_workers
            except OSError:
                return False

        wait_for(workers_up, "Dask workers", procs, folder, START_TIMEOUT_S)
    return Started(address=addr, procs=procs, extra={"n_workers": n_workers})
