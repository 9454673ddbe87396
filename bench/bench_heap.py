"""Engine client imports in a task process's heap: the collector running as usual against paused (hygiene/heap.py).

Each trial is a fresh process that first imports what an Airflow task process holds before its
engine starts (``airflow.sdk``, the task runner, the provider's hooks), then imports one engine's
client: as the hook's ``pre`` did before (collector running), and inside
``heap.collection_paused()`` as ``pre`` runs now. Sides alternate (A B, B A, ...). Reported:
median CPU seconds of the import, the collections it triggered, and the ratio paused / usual.

    .venv/bin/python bench/bench_heap.py [--trials 5] [--clients spark_connect,ray,dask,torch]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CLIENTS = {
    "spark_connect": "from pyspark.sql import SparkSession; from pyspark.sql.connect import session",
    "spark_classic": "from pyspark.sql import SparkSession",
    "ray": "import ray",
    "dask": "import distributed",
    "torch": "import torch.distributed.elastic.agent.server.api; from torch.distributed.launcher.api import elastic_launch",
}

TRIAL = '''
import contextlib, gc, json, sys, time, warnings
warnings.simplefilter("ignore")
import airflow.sdk
from airflow.sdk.execution_time import task_runner
import airflow_provider_flyte.hooks.base
from airflow_provider_flyte.hygiene import heap
paused = sys.argv[1] == "paused"
before = [s["collections"] for s in gc.get_stats()]
started = time.process_time()
with heap.collection_paused() if paused else contextlib.nullcontext():
    exec(sys.argv[2])
cpu = time.process_time() - started
after = [s["collections"] for s in gc.get_stats()]
print(json.dumps({"cpu": cpu, "collections": sum(a - b for a, b in zip(after, before))}))
'''


def trial(side: str, client: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", TRIAL, side, CLIENTS[client]], capture_output=True, text=True,
                         check=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--clients", default="spark_connect,ray,dask,torch")
    args = parser.parse_args()
    print("| client | usual CPU s | paused CPU s | paused / usual | collections usual / paused |")
    print("| --- | --- | --- | --- | --- |")
    for client in args.clients.split(","):
        runs: dict[str, list[dict[str, float]]] = {"usual": [], "paused": []}
        for i in range(args.trials):
            order = ("usual", "paused") if i % 2 == 0 else ("paused", "usual")
            for side in order:
                runs[side].append(trial(side, client))
        usual = statistics.median(r["cpu"] for r in runs["usual"])
        paused = statistics.median(r["cpu"] for r in runs["paused"])
        print(f"| {client} | {usual:.3f} | {paused:.3f} | {paused / usual:.2f} | "
              f"{runs['usual'][0]['collections']:.0f} / {runs['paused'][0]['collections']:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
