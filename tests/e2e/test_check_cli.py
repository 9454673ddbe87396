"""``airflow flyte check`` through Airflow's own CLI (the provider info's ``cli``); against a real API server:
tests/kubernetes/real/test_check.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_airflow_flyte_check_runs_the_check_and_exits_1_when_a_task_could_not_run(tmp_path: Path) -> None:
    env = {**os.environ, "AIRFLOW__FLYTE__STAGING_URI": f"file://{tmp_path}"}
    env.pop("AIRFLOW_CONN_NO_SUCH_K8S", None)
    out = subprocess.run([sys.executable, "-m", "airflow", "flyte", "check", "--conn-id", "no_such_k8s"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("✗ connection 'no_such_k8s' cannot be loaded as a kubernetes connection"), out.stdout
    assert lines[1].startswith(f"✓ staging store file://{tmp_path} is writable from here"), out.stdout
    assert lines[-1] == "1 check(s) failed: some tasks cannot run through 'no_such_k8s'"
    usage = subprocess.run([sys.executable, "-m", "airflow", "flyte", "check"], capture_output=True, text=True,
                           env=env, timeout=300)
    assert usage.returncode == 2 and "--conn-id" in usage.stderr, usage.stderr[-2000:]
