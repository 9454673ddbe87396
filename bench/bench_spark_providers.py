"""The same Spark job through ``@flyte_task`` and through the apache-spark provider's ``@task.pyspark``.

Both run one task, ``spark.range(1, 1000).count()`` on ``local[*]`` with the UI off, in
``dag.test()``, one fresh process per trial (Spark keeps a JVM per process), sides
alternating (A B, B A, ...). Timed: the whole process (imports, DAG parse, ``dag.test()``,
exit) and ``dag.test()`` alone; each trial checks the run succeeded and returned 999.

``apache-airflow-providers-apache-spark`` depends on ``pyspark-client``, which ships a
``pyspark`` package of its own and clashes with the full pyspark in the project's venv, so
its side runs in a separate venv (default ``/tmp/bench-pyspark-venv``) that this script
creates when missing: ``python -m venv``, then ``pip install apache-airflow==<ours>
apache-airflow-providers-apache-spark pyspark==<ours>``, then pyspark reinstalled alone
(``--force-reinstall --no-deps``) so its files win over pyspark-client's. Each side has a
scratch ``AIRFLOW_HOME`` whose DB is migrated before the timed trials.

    .venv/bin/python bench/bench_spark_providers.py [--trials 5] [--venv /tmp/bench-pyspark-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

FLYTE_DAG = '''from datetime import datetime

from airflow.sdk import dag

from airflow_provider_flyte import ctx, flyte_task
from airflow_provider_flyte.plugins.spark import Spark


@dag(dag_id="bench_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def bench_spark():
    @flyte_task(plugin_config=Spark(spark_conf={"spark.master": "local[*]", "spark.ui.enabled": "false"}))
    def count() -> int:
        return ctx().data["spark_session"].range(1, 1000).count()

    count()


bench_spark()
'''

PYSPARK_DAG = '''from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="bench_spark", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def bench_spark():
    @task.pyspark(config_kwargs={"spark.master": "local[*]", "spark.ui.enabled": "false"})
    def count(spark=None, sc=None) -> int:
        return spark.range(1, 1000).count()

    count()


bench_spark()
'''

RUN = """
import json, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]).parent)
assert not bag.import_errors, bag.import_errors
dag = bag.dags["bench_spark"]
start = time.perf_counter()
dr = dag.test()
elapsed = time.perf_counter() - start
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
with create_session() as session:
    values = [row.value for row in session.query(XComModel).filter_by(
        dag_id="bench_spark", run_id=dr.run_id, key="return_value")]
assert str(dr.state) == "success" and values == [999], (dr.state, values)
print("RESULT " + json.dumps({"dag_test": elapsed}))
"""


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *args], check=True)


def _venv_ok(venv: Path, pyspark_version: str) -> bool:
    check = ("import pyspark, os, airflow.providers.apache.spark.decorators.pyspark; "
             f"assert pyspark.__version__ == {pyspark_version!r}, pyspark.__version__; "
             "assert os.path.isdir(os.path.join(os.path.dirname(pyspark.__file__), 'jars'))")
    python = venv / "bin" / "python"
    return python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def ensure_venv(venv: Path) -> Path:
    """The apache-spark provider's venv, created when missing or broken; returns its python."""
    airflow_version, pyspark_version = metadata.version("apache-airflow"), metadata.version("pyspark")
    if not _venv_ok(venv, pyspark_version):
        print(f"creating {venv}: apache-airflow=={airflow_version}, apache-airflow-providers-apache-spark, "
              f"pyspark=={pyspark_version}", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        _pip(venv, f"apache-airflow=={airflow_version}", "apache-airflow-providers-apache-spark",
             f"pyspark=={pyspark_version}")
        # pyspark-client (a dependency of the provider) overwrites pyspark's files: put pyspark back.
        _pip(venv, "--force-reinstall", "--no-deps", f"pyspark=={pyspark_version}")
        if not _venv_ok(venv, pyspark_version):
            raise RuntimeError(f"{venv}: pyspark {pyspark_version} with its jars is not importable after install")
    return venv / "bin" / "python"


def _env(home: Path, pythonpath: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    if not pythonpath:
        env.pop("PYTHONPATH", None)
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False",
                "SPARK_LOCAL_IP": "127.0.0.1", "NO_COLOR": "1"})
    return env


def _trial(python: str, dag_file: Path, env: dict[str, str]) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.run([python, "-c", RUN, str(dag_file)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    lines = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{python} {dag_file} failed:\n{proc.stdout[-1500:]}\n{proc.stderr[-3000:]}")
    return wall, float(json.loads(lines[-1][7:])["dag_test"])


def run(trials: int, venv: Path) -> list[dict[str, object]]:
    other_python = ensure_venv(venv)
    with tempfile.TemporaryDirectory(prefix="flyte-bench-spark-") as tmp:
        sides = {}
        for side, python, text, pythonpath in (("@flyte_task", sys.executable, FLYTE_DAG, True),
                                               ("@task.pyspark", str(other_python), PYSPARK_DAG, False)):
            home = Path(tmp) / side.strip("@").replace(".", "_")
            (home / "dags").mkdir(parents=True)
            dag_file = home / "dags" / "bench_spark.py"
            dag_file.write_text(text)
            env = _env(home, pythonpath)
            subprocess.run([python, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
            sides[side] = (python, dag_file, env)
        results: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
        for trial in range(trials):
            for side in (list(sides) if trial % 2 == 0 else list(reversed(sides))):
                results[side].append(_trial(*sides[side]))
    print(f"# Spark job in dag.test(): {os.cpu_count()} CPUs, {trials} trials per side, A/B alternating, "
          "fresh process per trial (seconds, median [min-max])")
    print("| decorator | whole process | dag.test() |\n| --- | --- | --- |")
    rows = []
    for side, values in results.items():
        walls, tests = [w for w, _ in values], [t for _, t in values]
        rows.append({"side": side, "wall": statistics.median(walls), "dag_test": statistics.median(tests),
                     "walls": walls, "tests": tests})
        print(f"| `{side}` | {statistics.median(walls):.2f} [{min(walls):.2f}-{max(walls):.2f}] "
              f"| {statistics.median(tests):.2f} [{min(tests):.2f}-{max(tests):.2f}] |", flush=True)
    ours, theirs = rows
    print(f"@flyte_task / @task.pyspark: whole process {ours['wall'] / theirs['wall']:.2f}x, "  # type: ignore[operator]
          f"dag.test() {ours['dag_test'] / theirs['dag_test']:.2f}x")  # type: ignore[operator]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--venv", type=Path, default=Path("/tmp/bench-pyspark-venv"))
    args = parser.parse_args()
    run(args.trials, args.venv)


if __name__ == "__main__":
    main()
