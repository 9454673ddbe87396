"""Warm engines (ReusePolicy) against a cold start per task, under LocalExecutor with parallelism 2.

One ``airflow standalone`` (tests/support/standalone.py: own home, loopback only) serves
bench/dags/bench_warm_dags.py. For each engine the same ``.expand()`` over 20 small tasks runs
cold (one engine per task) and warm (a warm server per fingerprint), one after the other. Reported:
the whole-DAG wall time of each run and their ratio, the median acquire (the runner's "ready in"
line) with and without the Spark Connect client's import (the hook logs it apart), and the median
time a task took from its start to its function's first line (task process, imports, acquire).

Before the run the provider's modules and the DAG folder are byte-compiled, as a wheel install and
the DAG processor leave them: a source checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the
development machines) would otherwise compile the provider from source in every task process, which
no deployment does (``--source-only`` measures that case).

    PYTHONPATH=src:. .venv/bin/python bench/bench_warm.py [--engines spark,ray,dask] [--source-only]
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

from bench.install_like import compile_like_an_install  # noqa: E402
from tests.support.standalone import Standalone  # noqa: E402

DAGS = Path(__file__).resolve().parent / "dags" / "bench_warm_dags.py"


def _seconds(run: dict) -> float:
    start = datetime.fromisoformat(run["start_date"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(run["end_date"].replace("Z", "+00:00"))
    return (end - start).total_seconds()


READY = re.compile(r"(?:Spark|Ray|Dask) ready in ([0-9.]+)s")
CLIENT_IMPORT = re.compile(r"Spark Connect client imported in ([0-9.]+)s")


def run_one(airflow: Standalone, dag_id: str, n: int, show_log: bool = False) -> tuple[float, float, float, float]:
    """The DAG's wall time, and medians of: the acquire, the acquire less its client import (Spark Connect), and
    task start to function."""
    airflow.wait_for_dag(dag_id)
    response = airflow.trigger(dag_id)
    response.raise_for_status()
    run_id = response.json()["dag_run_id"]
    run = airflow.wait_for_run(dag_id, run_id, timeout=1800)
    if run["state"] != "success":
        airflow.fail(f"{dag_id}: {run['state']}\n{airflow.failed_task_logs(dag_id, run_id)}")
    acquires, without_import = [], []
    for i in range(n):
        task_log = airflow.task_log(dag_id, run_id, "small", i)
        match = READY.search(task_log)
        if match is None:
            airflow.fail(f"{dag_id}[{i}]: no 'ready in' line in the task log")
        acquires.append(float(match.group(1)))
        imported = CLIENT_IMPORT.search(task_log)
        without_import.append(acquires[-1] - (float(imported.group(1)) if imported else 0.0))
        if show_log and i == n // 2:  # where the acquire goes: the timestamps of the hook's lines
            print(f"--- {dag_id}[{i}] ---", *_provider_lines(airflow.task_log(dag_id, run_id, "small", i)), sep="\n")
    to_function = [airflow.xcom(dag_id, run_id, "small", i)["acquire_s"] for i in range(n)]
    return _seconds(run), statistics.median(acquires), statistics.median(without_import), statistics.median(to_function)


def _provider_lines(log: str) -> list[str]:
    return [line[:220] for line in log.splitlines() if "airflow_provider_flyte" in line or "ready in" in line]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", default="spark,ray,dask")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--show-log", action="store_true", help="print the provider's log lines of one task per run")
    parser.add_argument("--source-only", action="store_true",
                        help="leave the provider and the DAG folder without bytecode (every process compiles them)")
    args = parser.parse_args()
    warm_dir = tempfile.mkdtemp(prefix="flyte-bench-warm-")
    airflow = Standalone([DAGS], parallelism=2, extra_env={"AIRFLOW__FLYTE__WARM_DIR": warm_dir,
                                                         "FLYTE_BENCH_WARM_N": str(args.n)})
    rows = []
    try:
        if not args.source_only:
            import airflow_provider_flyte

            compile_like_an_install(Path(airflow_provider_flyte.__file__).parent, airflow.dags)
        airflow.start()
        for engine in args.engines.split(","):
            cold_wall, cold_acquire, _, cold_start = run_one(airflow, f"bench_warm_{engine}_cold", args.n,
                                                             args.show_log)
            warm_wall, warm_acquire, warm_engine, warm_start = run_one(airflow, f"bench_warm_{engine}_warm", args.n,
                                                                       args.show_log)
            rows.append((engine, cold_wall, warm_wall, cold_acquire, warm_acquire, warm_engine, cold_start, warm_start))
            print(f"{engine}: DAG cold {cold_wall:.1f}s warm {warm_wall:.1f}s ratio {warm_wall / cold_wall:.2f}; "
                  f"median acquire cold {cold_acquire:.2f}s warm {warm_acquire:.2f}s "
                  f"({100 * warm_acquire / cold_acquire:.1f}%; without the client import {warm_engine:.2f}s); median task "
                  f"start to function cold {cold_start:.2f}s warm {warm_start:.2f}s", flush=True)
    finally:
        airflow.stop()
        airflow.cleanup()
        subprocess.run([sys.executable, "-m", "airflow_provider_flyte.warm", "stop", "--all"], check=False,
                       env=dict(os.environ, AIRFLOW__FLYTE__WARM_DIR=warm_dir))
        shutil.rmtree(warm_dir, ignore_errors=True)
    print("\n| engine | DAG wall cold | DAG wall warm | ratio | median acquire cold | warm | warm/cold "
          "| warm without the client import | task start to function cold | warm |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for engine, cw, ww, ca, wa, we, cs, ws in rows:
        print(f"| {engine} | {cw:.1f} s | {ww:.1f} s | {ww / cw:.2f} | {ca:.2f} s | {wa:.2f} s | {100 * wa / ca:.1f}% "
              f"| {we:.2f} s ({100 * we / ca:.1f}%) | {cs:.1f} s | {ws:.1f} s |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
