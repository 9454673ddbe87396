"""Where one reused warm Spark acquire goes, step by step, outside Airflow.

A first process runs a task through the provider's ``TaskRunner`` with a ``ReusePolicy``: it starts
a warm Spark Connect server (not timed). Then ``--trials`` fresh processes, each holding the task
runner's imports first (``airflow.sdk``, the task runner, the provider's hooks) as a task process
does, run the same task: each reuses the server. The hook's log lines are timed as they are emitted
and give the steps of ``pre()``: the lease, the Spark Connect client import, the session object, the
session properties and the code bundle (the first RPC, during which the server creates the
session), the bundle upload. Medians [min-max] in milliseconds. The server is stopped at the end.

    PYTHONPATH=src:. .venv/bin/python bench/bench_warm_acquire.py [--trials 5]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

TRIAL = r'''
import sys, warnings
warnings.simplefilter("ignore")
import airflow.sdk
from airflow.sdk.execution_time import task_runner
import airflow_provider_flyte.hooks.base
from pathlib import Path
from airflow_provider_flyte import ReusePolicy
from airflow_provider_flyte.plugins.spark import Spark
from airflow_provider_flyte.runtime.runner import TaskRunner
from airflow_provider_flyte.core.spec import TaskSpec
from airflow_provider_flyte.core.task_info import TaskInfo

root = Path(sys.argv[1])
config = Spark(spark_conf={"spark.master": "local[1]", "spark.driver.memory": "512m", "spark.ui.enabled": "false",
                           "spark.sql.shuffle.partitions": "1"})
spec = TaskSpec(task=TaskInfo(dag_id="bench_acquire", task_id="t", run_id="r", project_root=root,
                              dag_file=str(root / "jobs.py")),
                config_type="airflow_provider_flyte.plugins.spark.Spark", config=config.to_dict(),
                reusable=ReusePolicy(replicas=1, idle_ttl=60).to_dict())
TaskRunner(spec, config, lambda: None).run((), {})
'''
#: A log line as the task runner prints it: ISO timestamp, level, message.
LINE = re.compile(r"^(\d{4}-\d\d-\d\dT[\d:.]+)Z \[\w+\s*\] (.*)$")


def run_task(root: Path, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", TRIAL, str(root)], capture_output=True, text=True, env=env,
                         timeout=300, check=False)
    if out.returncode != 0:
        raise SystemExit(f"the task failed:\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return out.stdout + out.stderr


def steps(log: str) -> dict[str, float]:
    """The steps of one reused acquire, in seconds, from the timestamps of the hook's log lines."""
    marks = []
    for line in log.splitlines():
        match = LINE.match(line)
        if match:
            marks.append((datetime.fromisoformat(match.group(1)).timestamp(), match.group(2)))

    def at(prefix: str) -> float:
        return next(t for t, message in marks if message.startswith(prefix))

    if not any(message.startswith("Reusing warm Spark server") for _, message in marks):
        raise SystemExit(f"the task did not reuse the warm server:\n{log[-3000:]}")
    imported = next(m for _, m in marks if m.startswith("Spark Connect client imported in"))
    return {
        "lease": at("Reusing warm Spark server") - at("Running "),
        "client import": float(imported.split(" in ")[1].split("s")[0]),
        "session object": at("Spark Connect session ") - at("Spark Connect client imported"),
        "properties and bundle": at("Code bundle ") - at("Spark Connect session "),
        "bundle upload": at("Spark ready in") - at("Code bundle "),
        "acquire (pre)": at("Spark ready in") - at("Running "),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flyte-bench-acquire-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        (root / "jobs.py").write_text("def job(x):\n    return x\n")
        warm_dir = Path(tmp) / "warm"
        env = dict(os.environ, AIRFLOW__FLYTE__WARM_DIR=str(warm_dir), AIRFLOW_HOME=str(Path(tmp) / "home"))
        try:
            run_task(root, env)  # starts the server
            runs = [steps(run_task(root, env)) for _ in range(args.trials)]
        finally:
            subprocess.run([sys.executable, "-m", "airflow_provider_flyte.warm", "stop", "--all"], env=env,
                           check=False, capture_output=True)
    print("| step | median ms | min-max ms |")
    print("| --- | --- | --- |")
    for step in runs[0]:
        values = [1000 * run[step] for run in runs]
        print(f"| {step} | {statistics.median(values):.0f} | {min(values):.0f}-{max(values):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
