"""Warm engines (ReusePolicy) against a cold start per task, under LocalExecutor with parallelism 2.

One ``airflow standalone`` (tests/standalone.py: own home, loopback only) serves
bench/dags/bench_warm_dags.py. For each engine the same ``.expand()`` over 20 small tasks runs
cold (one engine per task) and warm (a warm server per fingerprint), one after the other. Reported:
the whole-DAG wall time of each run and their ratio, and the median time a task took from its
start to its function's first line (task process, imports and acquiring the engine).

    PYTHONPATH=src:. .venv/bin/python bench/bench_warm.py [--engines spark,ray,dask]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.standalone import Standalone  # noqa: E402

DAGS = Path(__file__).resolve().parent / "dags" / "bench_warm_dags.py"


def _seconds(run: dict) -> float:
    start = datetime.fromisoformat(run["start_date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


READY = re.compile(r"(?:Spark|Ray|Dask) ready in ([0-9.]+)s")


def run_one(airflow: Standalone, dag_id: str, n: int) -> tuple[float, float, float]:
    airflow.wait_for_dag(dag_id)
    response = airflow.trigger(dag_id)
    response.raise_for_status()
    run_id = response.json()["dag_run_id"]
    run = airflow.wait_for_run(dag_id, run_id, timeout=1800)
    if run["state"] != "success":
        airflow.fail(f"{dag_id}: {run['state']}\n{airflow.failed_task_logs(dag_id, run_id)}")
    acquires = []
    for i in range(n):
        match = READY.search(airflow.task_log(dag_id, run_id, "small", i))
        if match is None:
            airflow.fail(f"{dag_id}[{i}]: no 'ready in' line in the task log")
        acquires.append(float(match.group(1)))
    to_function = [airflow.xcom(dag_id, run_id, "small", i)["acquire_s"] for i in range(n)]
    return _seconds(run), statistics.median(acquires), statistics.median(to_function)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="spark,ray,dask")
    parser.add_argument("--n", type=int, default=20)
    args = parser.parse_args()
    warm_dir = tempfile.mkdtemp(prefix="flyte-bench-warm-")
    airflow = Standalone([DAGS], parallelism=2, extra_env={"AIRFLOW__FLYTE__WARM_DIR": warm_dir})
    rows = []
    try:
        airflow.start()
        for engine in args.engines.split(","):
            cold_wall, cold_acquire, cold_start = run_one(airflow, f"bench_warm_{engine}_cold", args.n)
            warm_wall, warm_acquire, warm_start = run_one(airflow, f"bench_warm_{engine}_warm", args.n)
            rows.append((engine, cold_wall, warm_wall, cold_acquire, warm_acquire, cold_start, warm_start))
            print(f"{engine}: DAG cold {cold_wall:.1f}s warm {warm_wall:.1f}s ratio {warm_wall / cold_wall:.2f}; "
                  f"median acquire cold {cold_acquire:.2f}s warm {warm_acquire:.2f}s "
                  f"({100 * warm_acquire / cold_acquire:.1f}%); median task start to function cold "
                  f"{cold_start:.2f}s warm {warm_start:.2f}s", flush=True)
    finally:
        airflow.stop()
        airflow.cleanup()
        subprocess.run([sys.executable, "-m", "airflow_provider_flyte.warm", "stop", "--all"], check=False,
                       env=dict(os.environ, AIRFLOW__FLYTE__WARM_DIR=warm_dir))
        shutil.rmtree(warm_dir, ignore_errors=True)
    print("\n| engine | DAG wall cold | DAG wall warm | ratio | median acquire cold | warm | warm/cold "
          "| task start to function cold | warm |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for engine, cw, ww, ca, wa, cs, ws in rows:
        print(f"| {engine} | {cw:.1f} s | {ww:.1f} s | {ww / cw:.2f} | {ca:.2f} s | {wa:.2f} s | {100 * wa / ca:.1f}% "
              f"| {cs:.1f} s | {ws:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
