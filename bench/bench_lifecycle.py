"""Lifecycle overhead: the provider's pre/run/post against the bare engine, as ratios in one run.

Each trial is a fresh Python process (engines keep global state), timed from process start
to exit, so imports, engine startup, one small job and teardown are all included. Both
sides import ``airflow.sdk`` first, as a task process already has. Bare and
provider trials alternate so machine noise hits both alike.

    .venv/bin/python bench/bench_lifecycle.py [--trials 3] [--engines spark,ray,dask,pytorch]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

PROVIDER = """
from airflow_provider_flyte.task_info import TaskInfo
from airflow_provider_flyte import registry
from airflow_provider_flyte.context import TaskContext, task_context
config = {config}
hook = registry.find(type(config)).hook_class()(config, task=TaskInfo(dag_id="bench", task_id="t"))
with hook.session() as data, task_context(TaskContext(data=data)):
    result = hook.run(lambda: ({job}), (), {{}})
assert result == {expected!r}, result
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
                   rdzv_endpoint=f"127.0.0.1:{port}", run_id="bench", max_restarts=0, monitor_interval=0.5)
assert elastic_launch(cfg, all_reduce)()[0] == 3
""",
        imports="from airflow_provider_flyte.plugins.pytorch import Elastic",
        config="Elastic(nnodes=1, nproc_per_node=2, max_restarts=0, monitor_interval=1)",
        job=None,
        expected=3,
    ),
}

TORCH_PROVIDER = """
from airflow_provider_flyte.task_info import TaskInfo
from airflow_provider_flyte import registry
from bench_torch_entry import all_reduce
config = {config}
hook = registry.find(type(config)).hook_class()(config, task=TaskInfo(dag_id="bench", task_id="t"))
with hook.session():
    result = hook.run(all_reduce, (), {{}})
assert result == 3, result
"""


#: Both sides start with Airflow imported, as in a real task process: only engine + lifecycle differ.
PRELUDE = "import airflow.sdk\n"


def _timed(code: str) -> float:
    code = PRELUDE + code
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__)), "SPARK_LOCAL_IP": "127.0.0.1",
           "RAY_USAGE_STATS_ENABLED": "0"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--engines", default=",".join(ENGINES))
    args = parser.parse_args()
    print(f"# {os.cpu_count()} CPUs, {args.trials} trials each, fresh process per trial (seconds, median)")
    print("| engine | bare engine | provider | ratio |\n| --- | --- | --- | --- |")
    for name in args.engines.split(","):
        spec = ENGINES[name]
        template = TORCH_PROVIDER if spec["job"] is None else PROVIDER
        provider = spec["imports"] + "\n" + template.format(config=spec["config"], job=spec["job"],
                                                            expected=spec["expected"])
        bare_times, provider_times = [], []
        for _ in range(args.trials):
            bare_times.append(_timed(spec["bare"]))
            provider_times.append(_timed(provider))
        bare, ours = statistics.median(bare_times), statistics.median(provider_times)
        print(f"| {name} | {bare:.1f} | {ours:.1f} | {ours / bare:.2f} |", flush=True)


if __name__ == "__main__":
    main()
