"""Lifecycle overhead: the provider's pre/run/post against the bare engine, as ratios in one run.

Each trial is a fresh Python process (engines keep global state), timed from process start
to exit, so imports, engine startup, one small job and teardown are all included. Both
sides import ``airflow.sdk`` first, as a task process already has. Bare and provider trials
alternate (A B, then B A, ...) after one untimed warm-up run of each (``--warmup``), so
machine noise and warm caches hit both alike; the table gives medians. The provider side
also reports its phases (provider imports, ``pre``, the job, ``post``), and both sides the
time from the script's last line to process exit, so the overhead can be located.
``--profile DIR`` records one extra provider trial per engine with py-spy (main thread,
collapsed stacks in DIR) and prints the provider functions holding the most samples.

    .venv/bin/python bench/bench_lifecycle.py [--trials 5] [--engines spark,ray,dask,pytorch] [--profile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROVIDER = """
import json, time
_t = [time.perf_counter()]
{imports}
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte import registry
from airflow_provider_flyte.context import TaskContext, task_context
config = {config}
hook = registry.find(type(config)).hook_class()(config, task=TaskInfo(dag_id="bench", task_id="t"))
_t.append(time.perf_counter())
with hook.session() as data, task_context(TaskContext(data=data)):
    _t.append(time.perf_counter())
    result = hook.run(lambda: ({job}), (), {{}})
    _t.append(time.perf_counter())
_t.append(time.perf_counter())
assert result == {expected!r}, result
print("PHASES " + json.dumps([b - a for a, b in zip(_t, _t[1:])]))
"""

ENGINES = {
    "spark": dict(
        bare="""
from pyspark.sql import SparkSession
spark = SparkSession.builder.master("local[*]").config("spark.ui.enabled", "false").getOrCreate()
assert spark.range(1, 1000).count() == 999
spark.stop()
""",
        imports="from airflow_provider_flyte.plugins.spark import Spark",
        config='Spark(spark_conf={"spark.ui.enabled": "false"})',
        job='__import__("airflow_provider_flyte").ctx().data["spark_session"].range(1, 1000).count()',
        expected=999,
    ),
    "ray": dict(
        bare="""
import ray
ray.init(num_cpus=2, include_dashboard=False)
assert ray.get(ray.remote(lambda x: x * x).remote(3)) == 9
ray.shutdown()
""",
        imports="from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig",
        config='RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)])',
        job='__import__("ray").get(__import__("ray").remote(lambda x: x * x).remote(3))',
        expected=9,
    ),
    "dask": dict(
        bare="""
from distributed import Client, LocalCluster
with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as c:
    assert c.submit(lambda x: x * x, 3).result() == 9
""",
        imports="from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup",
        config="Dask(workers=WorkerGroup(number_of_workers=2))",
        job='__import__("distributed").Client().submit(lambda x: x * x, 3).result()',
        expected=9,
    ),
    "pytorch": dict(
        bare="""
import socket
from torch.distributed.launcher.api import LaunchConfig, elastic_launch
from bench_torch_entry import all_reduce
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
cfg = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=2, rdzv_backend="c10d",
                   rdzv_endpoint=f"127.0.0.1:{port}", run_id="bench", max_restarts=0, monitor_interval=1)
assert elastic_launch(cfg, all_reduce)()[0] == 3
""",
        imports="from airflow_provider_flyte.plugins.pytorch import Elastic",
        config="Elastic(nnodes=1, nproc_per_node=2, max_restarts=0, monitor_interval=1)",
        job=None,
        expected=3,
    ),
}

TORCH_PROVIDER = """
import json, time
_t = [time.perf_counter()]
{imports}
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte import registry
from bench_torch_entry import all_reduce
config = {config}
hook = registry.find(type(config)).hook_class()(config, task=TaskInfo(dag_id="bench", task_id="t"))
_t.append(time.perf_counter())
with hook.session():
    _t.append(time.perf_counter())
    result = hook.run(all_reduce, (), {{}})
    _t.append(time.perf_counter())
_t.append(time.perf_counter())
assert result == 3, result
print("PHASES " + json.dumps([b - a for a, b in zip(_t, _t[1:])]))
"""

PHASES = ("imports", "pre", "job", "post")


#: Both sides start with Airflow imported, as in a real task process: only engine + lifecycle differ.
PRELUDE = "import airflow.sdk\n"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.abspath(__file__)),
                                                         os.environ.get("PYTHONPATH", "")]),
            "SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0"}


def _timed(code: str) -> tuple[float, list[float] | None, float]:
    """Seconds from process start to exit, the provider's phases when it printed them, and the
    seconds from the script's last line to the process's exit (atexit hooks, threads, interpreter
    shutdown)."""
    code = ("import time as _bench_time\n" + PRELUDE + code
            + "\nprint('STAMP', _bench_time.time(), flush=True)\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    ended = time.time()
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    phases = [line for line in proc.stdout.splitlines() if line.startswith("PHASES ")]
    stamps = [line for line in proc.stdout.splitlines() if line.startswith("STAMP ")]
    exit_s = ended - float(stamps[-1].split()[1]) if stamps else float("nan")
    return elapsed, (json.loads(phases[-1][7:]) if phases else None), exit_s


def provider_code(name: str) -> str:
    spec = ENGINES[name]
    template = TORCH_PROVIDER if spec["job"] is None else PROVIDER
    return template.format(imports=spec["imports"], config=spec["config"], job=spec["job"],
                           expected=spec["expected"])


def profile(name: str, out_dir: Path, top: int = 12) -> Path:
    """One provider trial under py-spy (children included), as collapsed stacks; prints a summary.

    The summary attributes each sample of the main process to its innermost
    ``airflow_provider_flyte`` frame (samples with none are the engine's or Airflow's own) and
    lists the provider functions that hold the most samples, with what they were doing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    script = out_dir / f"lifecycle_{name}.py"
    script.write_text(PRELUDE + provider_code(name))
    target = out_dir / f"lifecycle_{name}.collapsed.txt"
    pyspy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or "py-spy"
    subprocess.run([pyspy, "record", "--rate", "100", "--format", "raw", "--idle", "-o", str(target), "--",
                    sys.executable, str(script)], env=_env(), check=True, capture_output=True)
    by_frame: dict[str, int] = {}
    leaf: dict[str, dict[str, int]] = {}
    total = 0
    for line in target.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames, n = stack.split(";"), int(count)
        if not any(script.name in f for f in frames):
            continue  # another thread: only the task's main thread is on the clock
        total += n
        ours = [f for f in frames if "airflow_provider_flyte" in f]
        key = ours[-1] if ours else "(no provider frame: engine, Airflow or imports)"
        by_frame[key] = by_frame.get(key, 0) + n
        inner = frames[-1] if ours and frames[-1] != ours[-1] else "(itself)"
        leaf.setdefault(key, {})
        leaf[key][inner] = leaf[key].get(inner, 0) + n
    print(f"## py-spy {name}: {total} main-thread samples at 100 Hz (waits included), by innermost provider frame")
    for key, n in sorted(by_frame.items(), key=lambda kv: -kv[1])[:top]:
        inner, m = max(leaf[key].items(), key=lambda kv: kv[1])
        print(f"#   {n / 100:6.2f} s  {key[:110]}\n#              mostly in {inner[:100]} ({m / 100:.2f} s)")
    return target


def run(trials: int, engines: list[str], warmup: int = 1) -> list[dict[str, object]]:
    """Alternating trials per engine; one row (medians) per engine, printed as it completes."""
    print(f"# lifecycle: {os.cpu_count()} CPUs, {warmup} untimed warm-up run(s) then {trials} trials per side, "
          "A/B alternating, "
          "fresh process per trial (seconds, median [min-max])")
    print("| engine | bare engine | provider | ratio | overhead | provider imports | pre | job | post "
          "| exit after last line (bare / provider) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = []
    for name in engines:
        bare_code, ours_code = ENGINES[name]["bare"], provider_code(name)
        bare_times: list[float] = []
        provider_times: list[float] = []
        phases: list[list[float]] = []
        exits: dict[str, list[float]] = {"bare": [], "provider": []}
        for _ in range(warmup):  # untimed: the first process after another engine reads cold files
            _timed(bare_code)
            _timed(ours_code)
        for trial in range(trials):
            order = ("bare", "provider") if trial % 2 == 0 else ("provider", "bare")
            for side in order:
                if side == "bare":
                    elapsed, _, exit_s = _timed(bare_code)
                    bare_times.append(elapsed)
                else:
                    elapsed, phase, exit_s = _timed(ours_code)
                    provider_times.append(elapsed)
                    if phase:
                        phases.append(phase)
                exits[side].append(exit_s)
        bare, ours = statistics.median(bare_times), statistics.median(provider_times)
        med_phases = [statistics.median(p[i] for p in phases) for i in range(len(PHASES))]
        row = {"engine": name, "bare": bare, "provider": ours, "ratio": ours / bare,
               "bare_all": bare_times, "provider_all": provider_times,
               **dict(zip(PHASES, med_phases, strict=True))}
        rows.append(row)
        target = max(1.05 * bare, bare + 0.150)
        print(f"| {name} | {bare:.2f} [{min(bare_times):.2f}-{max(bare_times):.2f}] "
              f"| {ours:.2f} [{min(provider_times):.2f}-{max(provider_times):.2f}] | {ours / bare:.2f} "
              f"| {ours - bare:+.2f} ({'meets' if ours <= target else 'misses'} target) | "
              + " | ".join(f"{v:.2f}" for v in med_phases)
              + f" | {statistics.median(exits['bare']):.2f} / {statistics.median(exits['provider']):.2f} |",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each side first, per engine")
    parser.add_argument("--profile", type=Path, default=None,
                        help="also record one provider trial per engine with py-spy into this folder")
    args = parser.parse_args()
    engines = args.engines.split(",")
    run(args.trials, engines, args.warmup)
    if args.profile:
        for name in engines:
            print(f"profile {name}: {profile(name, args.profile)}", flush=True)


if __name__ == "__main__":
    main()
