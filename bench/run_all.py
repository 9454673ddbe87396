"""All benchmarks in one command, each printing a markdown table, plus the machine they ran on.

    .venv/bin/python -m bench.run_all [--quick] [--only lifecycle,parse,heap,bundle,spark,expand,warm,warm_acquire]
                                      [--trials 5] [--expand-trials 5] [--log FILE]

Each section runs as its own process (engines keep global state; a failed section does not stop
the others), in this order: lifecycle overhead per engine (bench_lifecycle.py), import and DAG
parse cost (bench_parse.py), engine client imports with the collector paused
(bench_heap.py), code bundle builds (bench_bundle.py), ``@flyte_task`` against
``@task.pyspark`` (bench_spark_providers.py, which creates its own venv for the apache-spark
provider when missing), ``.expand()`` under LocalExecutor (bench_expand.py), and warm engines
(``ReusePolicy``) against a cold start per task (bench_warm.py). Sides are
alternated and medians taken inside each script. ``--quick`` is a smoke run (one trial,
smallest sizes) to check the scripts work; its figures mean nothing. Everything printed is
also written to ``--log`` (default ``bench-results.md`` in the current folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SECTIONS = ("lifecycle", "parse", "heap", "bundle", "spark", "expand", "warm", "warm_acquire")


def machine() -> list[str]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal"))
        ram = f"{mem_kib / 2**20:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        ram = "unknown"
    versions = []
    for dist in ("apache-airflow", "pyspark", "ray", "dask", "distributed", "torch"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    return [
        f"date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"machine: {os.cpu_count()} CPUs ({model}), {ram} RAM, {platform.system()} {platform.release()}",
        f"python {platform.python_version()}; " + ", ".join(versions),
        f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
    ]


def commands(args: argparse.Namespace) -> dict[str, list[str]]:
    t = "1" if args.quick else str(args.trials)
    return {
        "lifecycle": ["bench_lifecycle.py", "--trials", t]
        + (["--engines", "dask"] if args.quick else [])
        + (["--profile", str(args.profile)] if args.profile else []),
        "parse": ["bench_parse.py", "--trials", t],
        "heap": ["bench_heap.py", "--trials", t],
        "bundle": ["bench_bundle.py", "--repeat", "1" if args.quick else str(max(args.trials, 5))]
        + (["--modules", "100", "--mb", "4"] if args.quick else []),
        "spark": ["bench_spark_providers.py", "--trials", t],
        "expand": ["bench_expand.py", "--trials", "1" if args.quick else str(args.expand_trials)]
        + (["--n", "2"] if args.quick else []),
        "warm": ["bench_warm.py"] + (["--engines", "dask", "--n", "2"] if args.quick else []),
        "warm_acquire": ["bench_warm_acquire.py", "--trials", t],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 trial, smallest sizes")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--expand-trials", type=int, default=5, help="trials of the slow .expand() section")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy profiles of the lifecycle runs here")
    parser.add_argument("--log", type=Path, default=Path("bench-results.md"))
    args = parser.parse_args()
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {','.join(SECTIONS)}")

    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
    repo = HERE.parent
    env["PYTHONPATH"] = os.pathsep.join([str(repo / "src"), str(repo), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    home = tempfile.mkdtemp(prefix="flyte-bench-airflow-home-")
    env["AIRFLOW_HOME"] = home  # a scratch home: the sections that need a DB migrate their own

    failed = []
    with args.log.open("w") as log:
        def emit(text: str) -> None:
            print(text, flush=True)
            log.write(text + "\n")
            log.flush()

        emit("# airflow-provider-flyte benchmarks")
        emit("")
        emit(f"command: {' '.join([Path(sys.executable).name, '-m', 'bench.run_all', *sys.argv[1:]])}")
        for line in machine():
            emit(line)
        for name in only:
            cmd = commands(args)[name]
            emit("")
            emit(f"## {name}: {' '.join(cmd)}")
            emit("")
            start = time.monotonic()
            proc = subprocess.Popen([sys.executable, str(HERE / cmd[0]), *cmd[1:]], env=env, cwd=str(repo),
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            assert proc.stdout is not None
            tail: list[str] = []
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail = (tail + [line])[-40:]
                # Keep the tables and the script's own notes; engine chatter stays out of the log.
                if line.startswith(("|", "#", "(", "@", "FAILED", "profile", "creating")):
                    emit(line)
            rc = proc.wait()
            emit("")
            emit(f"({name}: {time.monotonic() - start:.0f} s, exit {rc})")
            if rc != 0:
                failed.append(name)
                emit("last output:\n" + "\n".join(tail))
        emit("")
        emit(f"sections failed: {', '.join(failed) or 'none'}")
    shutil.rmtree(home, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
