"""M deferred Kubernetes tasks waiting at once in one asyncio loop (a triggerer's), against the simulator's API server.

Not a test. The API server (tests/support/k8s/server.py) runs in a child process, which holds M
SparkApplications RUNNING for ``--run-s`` seconds and then completes them all (writing the store
directly: the request log holds only what the triggers asked). This process runs M
``FlyteKubernetesJobTrigger`` s in one event loop, as a triggerer does (their triggers handed to
the loop directly, not deferred through Airflow), and reports:

- API requests (get/list/watch) per waiting task per minute, from the server's request log;
- completion-to-resume latency, p50 and p99 (the child's completion time to the trigger's event);
- this process's CPU seconds and memory (RSS peak), and the API server process's CPU seconds.

No completion may be missed: every trigger must give ``succeeded``. Run from the repository root::

    PYTHONPATH=src:. .venv/bin/python bench/bench_k8s_wait.py [--tasks 200] [--run-s 60] [--poll-interval 2]

(``PYTHONPATH=<a checkout of main>/src:.`` measures the polling trigger it replaces.)
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import time
from typing import Any

CONN_ID = "k8s_bench"


def _server(conn: Any, tasks: int, run_s: float) -> None:
    from tests.support.k8s.server import KubeApiServer
    from tests.support.k8s.waiters import WAITING_VERBS, create_jobs, set_state

    with KubeApiServer() as server:
        names = [f"bench-{i}" for i in range(tasks)]
        create_jobs(server, names)
        for name in names:
            set_state(server, name, "RUNNING")
        conn.send({"env": server.connection_env(CONN_ID), "names": names})
        conn.recv()  # the triggers are started
        go = time.time()
        server.clear_requests()
        cpu0 = time.process_time()
        time.sleep(run_s)
        done_at = {}
        for name in names:
            set_state(server, name, "COMPLETED")
            done_at[name] = time.time()
        conn.recv()  # every trigger gave its event
        end = time.time()
        time.sleep(1.0)  # the closed watches are logged when their stream ends
        requests = [(r.verb, r.resource) for r in server.request_log() if r.verb in WAITING_VERBS]
        conn.send({"go": go, "end": end, "done_at": done_at, "requests": requests,
                   "server_cpu_s": time.process_time() - cpu0})


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--run-s", type=float, default=60.0)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    args = parser.parse_args()

    here, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("spawn").Process(target=_server, args=(child, args.tasks, args.run_s))
    proc.start()
    setup = here.recv()
    os.environ.update(setup["env"])
    from tests.support.k8s.waiters import trigger, wait_all

    triggers = {name: trigger(name, CONN_ID, poll_interval=args.poll_interval) for name in setup["names"]}
    rss0 = _rss_mib()  # Airflow and the trigger module imported: the growth is the waiting's
    here.send("go")
    cpu0 = time.process_time()
    results = asyncio.run(wait_all(triggers))
    cpu = time.process_time() - cpu0
    here.send("done")
    report = here.recv()
    proc.join(30)

    statuses = {payload["status"] for payload, _ in results.values()}
    missed = [n for n in setup["names"] if n not in results or results[n][0]["status"] != "succeeded"]
    lags = sorted(results[n][1] - report["done_at"][n] for n in setup["names"] if n in results)
    minutes = (report["end"] - report["go"]) / 60
    by_kind: dict[str, int] = {}
    for verb, res in report["requests"]:
        by_kind[f"{verb} {res}"] = by_kind.get(f"{verb} {res}", 0) + 1
    p99 = lags[min(len(lags) - 1, int(round(0.99 * (len(lags) - 1))))]
    print("| tasks | waited | requests | per task per minute | resume p50 | resume p99 | missed | "
          "triggerer CPU | triggerer RSS | API server CPU |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| {args.tasks} | {minutes * 60:.0f} s | {len(report['requests'])} | "
          f"**{len(report['requests']) / args.tasks / minutes:.2f}** | {statistics.median(lags):.2f} s | {p99:.2f} s | "
          f"{len(missed)} | {cpu:.1f} s | {_rss_mib():.0f} MiB (+{_rss_mib() - rss0:.0f}; peak "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}) | {report['server_cpu_s']:.2f} s |")
    print("requests:", ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())), "| statuses:", sorted(statuses))
    if missed:
        raise SystemExit(f"missed completions: {missed[:10]}")


if __name__ == "__main__":
    main()
