"""``.expand()`` over 50 small Dask and Ray tasks under LocalExecutor, against the same work in one task.

A real ``airflow standalone`` (tests/support/standalone.py: own home, loopback only, LocalExecutor,
``parallelism`` 2 by default) serves four DAGs. ``<engine>_expand`` maps one ``@flyte_task``
over 50 inputs: each mapped instance starts its own local engine (a Dask cluster of one
worker, or a one-CPU Ray head), squares its input on it and tears it down. ``<engine>_one``
does the same 50 squares in one ``@flyte_task``, on one engine. Each run is timed by
Airflow's own DAG-run start and end dates; the two DAGs of an engine alternate (A B, B A,
...). The processes of the standalone are checked for sockets beyond loopback at the end.

    .venv/bin/python bench/bench_expand.py [--trials 1] [--engines dask,ray] [--n 50] [--parallelism 2]

Slow: on 2 CPUs one trial of both engines takes several minutes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support.standalone

DAGS = '''from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import Resources, ctx, flyte_task
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.plugins.ray import HeadNodeConfig, RayJobConfig

N = {n}
DASK = Dask(workers=WorkerGroup(number_of_workers=1, resources=Resources(cpu="1", memory="512Mi")))
RAY = RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(requests=Resources(cpu="1")))


def square(v: int) -> int:
    return v * v


@dag(dag_id="dask_expand", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def dask_expand():
    @flyte_task(plugin_config=DASK)
    def one_square(x: int) -> int:
        return ctx().data["dask_client"].submit(square, x).result()

    one_square.expand(x=list(range(N)))


@dag(dag_id="dask_one", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def dask_one():
    @flyte_task(plugin_config=DASK)
    def all_squares() -> list[int]:
        client = ctx().data["dask_client"]
        return client.gather(client.map(square, range(N)))

    all_squares()


@dag(dag_id="ray_expand", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_expand():
    @flyte_task(plugin_config=RAY)
    def one_square(x: int) -> int:
        import ray

        return ray.get(ray.remote(square).remote(x))

    one_square.expand(x=list(range(N)))


@dag(dag_id="ray_one", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def ray_one():
    @flyte_task(plugin_config=RAY)
    def all_squares() -> list[int]:
        import ray

        remote = ray.remote(square)
        return ray.get([remote.remote(v) for v in range(N)])

    all_squares()


dask_expand()
dask_one()
ray_expand()
ray_one()
'''


def _seconds(run: dict[str, object]) -> float:
    start = datetime.fromisoformat(str(run["start_date"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(run["end_date"]).replace("Z", "+00:00"))
    return (end - start).total_seconds()


def run(trials: int, engines: list[str], n: int, parallelism: int, timeout: float) -> list[dict[str, object]]:
    from tests.support.standalone import Standalone

    with tempfile.TemporaryDirectory(prefix="flyte-bench-expand-") as tmp:
        dag_file = Path(tmp) / "bench_expand_dags.py"
        dag_file.write_text(DAGS.format(n=n))
        sa = Standalone([dag_file], parallelism=parallelism)
        results: dict[str, list[float]] = {}
        failures: list[str] = []
        try:
            started = time.monotonic()
            sa.start()
            print(f"(airflow standalone healthy after {time.monotonic() - started:.0f} s; parallelism {parallelism})",
                  flush=True)
            for engine in engines:
                for dag_id in (f"{engine}_expand", f"{engine}_one"):
                    sa.wait_for_dag(dag_id)
                    results[dag_id] = []
            for engine in engines:
                for trial in range(trials):
                    pair = [f"{engine}_expand", f"{engine}_one"]
                    for dag_id in (pair if trial % 2 == 0 else pair[::-1]):
                        response = sa.trigger(dag_id)
                        response.raise_for_status()
                        run_id = response.json()["dag_run_id"]
                        dag_run = sa.wait_for_run(dag_id, run_id, timeout=timeout)
                        states = sa.task_states(dag_id, run_id)
                        if dag_run["state"] != "success":
                            failures.append(f"{dag_id} {run_id}: {dag_run['state']} {states}")
                            print(f"{dag_id}: {dag_run['state']}\n{sa.failed_task_logs(dag_id, run_id)[-3000:]}",
                                  flush=True)
                            continue
                        assert len(states) == (n if dag_id.endswith("expand") else 1), states
                        seconds = _seconds(dag_run)
                        results[dag_id].append(seconds)
                        print(f"({dag_id} trial {trial + 1}: {seconds:.1f} s, {len(states)} task instances)",
                              flush=True)
            beyond = sa.listening_beyond_loopback()
        finally:
            survivors = sa.stop()
            sa.cleanup()
        if beyond:
            failures.append(f"listening beyond loopback: {beyond}")
        if survivors:
            failures.append(f"processes left after stop: {survivors}")
    print(f"# .expand() under LocalExecutor: {os.cpu_count()} CPUs, parallelism {parallelism}, {n} inputs, "
          f"{trials} trial(s) per DAG (DAG-run seconds by Airflow's start/end dates, median [min-max])")
    print(f"| engine | .expand() over {n} tasks | same work in one task | ratio | per mapped task |")
    print("| --- | --- | --- | --- | --- |")
    rows = []
    for engine in engines:
        many, one = results.get(f"{engine}_expand", []), results.get(f"{engine}_one", [])
        if not many or not one:
            print(f"| {engine} | {_fmt(many)} | {_fmt(one)} | - | - |")
            continue
        m, o = statistics.median(many), statistics.median(one)
        rows.append({"engine": engine, "expand": many, "one": one})
        print(f"| {engine} | {_fmt(many)} | {_fmt(one)} | {m / o:.1f} | {m / n * parallelism:.1f} s "
              f"(run time / {n} x parallelism {parallelism}) |", flush=True)
    for failure in failures:
        print(f"FAILED: {failure}")
    return rows if not failures else []


def _fmt(values: list[float]) -> str:
    if not values:
        return "(no successful run)"
    return f"{statistics.median(values):.1f} [{min(values):.1f}-{max(values):.1f}]" if len(values) > 1 \
        else f"{values[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1)
    parser.add_argument("--engines", default="dask,ray")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for one DAG run")
    args = parser.parse_args()
    if not run(args.trials, args.engines.split(","), args.n, args.parallelism, args.timeout):
        sys.exit("no complete comparison, or a run failed (see FAILED lines)")


if __name__ == "__main__":
    main()
