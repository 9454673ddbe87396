"""A warm Ray server: ``ray start --head --block`` on 127.0.0.1 with token auth and a secret of its own.

Start-up settings (the fingerprint): ``num_cpus`` (the node's resources). Each task is a Ray job of
its own (its driver connects with ``ray.init(address=...)`` and its own ``runtime_env``/``working_dir``);
Ray runs every job's tasks in worker processes of that job, so nothing of one job reaches the next.
The temp dir is short (Ray's socket paths are length-limited) and recorded with :func:`own_dir`: the
supervisor removes it with the server folder.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_provider_flyte.warm.servers import (
    Started,
    answers,
    executable,
    free_port,
    launch,
    own_dir,
    server_env,
    wait_for,
)

START_TIMEOUT_S = 120
_PORT_FLAGS = ("--object-manager-port", "--node-manager-port", "--dashboard-agent-listen-port",
               "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")


def start(params: Mapping[str, Any], folder: Path, env: Mapping[str, str]) -> Started:
    # Ray before 2.52 has no token auth (the hook says so): the head then listens on loopback only,
    # like a local Ray.
    token = secrets.token_hex(32) if params.get("token_auth", True) else None
    temp_dir = own_dir(folder, tempfile.mkdtemp(prefix="fwr-", dir="/tmp"))
    port = free_port()
    penv = server_env(folder, {k: v for k, v in env.items() if not k.startswith("RAY_")},
                      **({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token} if token else {}),
                      RAY_USAGE_STATS_ENABLED="0",
                      RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", AUTOSCALER_METRIC_PORT="0", DASHBOARD_METRIC_PORT="0")
    ports: list[str] = []
    for flag in _PORT_FLAGS:
        ports += [flag, str(free_port())]
    argv = [executable("ray"), "start", "--head", "--block", "--disable-usage-stats",
            "--node-ip-address", "127.0.0.1", "--port", str(port), "--temp-dir", temp_dir,
            "--num-cpus", str(int(params.get("num_cpus", 1))), "--include-dashboard", "false",
            "--ray-client-server-port", str(free_port()), *ports, "--min-worker-port", "0", "--max-worker-port", "0"]
    procs = [launch(folder, "head", argv, penv)]

    def raylet_up() -> bool:
        return answers(port) and any(Path(temp_dir).glob("session_*/sockets/raylet*"))

    wait_for(raylet_up, "Ray head", procs, folder, START_TIMEOUT_S)
    return Started(address=f"gcs://127.0.0.1:{port}", token=token, procs=procs,
                   extra={"num_cpus": params.get("num_cpus")})
