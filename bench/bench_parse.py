"""Import and DAG-parse cost: DAGs written with ``@flyte_task`` against the same DAGs with plain ``@task``.

Each trial is a fresh process that has already imported ``airflow.sdk`` (as the DAG processor
has) and then parses one folder with ``BundleDagBag``, the DAG processor's loader: four DAGs,
one per engine (Spark, Ray, Dask, PyTorch Elastic), each with two tasks. The ``flyte`` folder
declares them with ``@flyte_task(plugin_config=...)``; the ``plain`` folder is the same DAGs
with ``@task``. Sides alternate (A B, B A, ...). Also timed: ``import airflow_provider_flyte``
alone. Reported: median CPU seconds of the process (robust to other load on the machine; the DAG
processor's cost is CPU), modules in ``sys.modules`` after the parse, and whether any
engine (pyspark, ray, dask, distributed, torch) was imported (it must not be).

The provider is byte-compiled first, as a wheel install leaves it (``--source-only`` measures a
checkout without bytecode, where every process compiles the provider from source).

    PYTHONPATH=src:. .venv/bin/python bench/bench_parse.py [--trials 5] [--source-only]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENGINE_PACKAGES = ("pyspark", "ray", "dask", "distributed", "torch")

CONFIGS = {
    "spark": ("from airflow_provider_flyte.plugins.spark import Spark",
              'Spark(spark_conf={"spark.ui.enabled": "false"})'),
    "ray": ("from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig",
            'RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)])'),
    "dask": ("from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup",
             "Dask(workers=WorkerGroup(number_of_workers=2))"),
    "pytorch": ("from airflow_provider_flyte.plugins.pytorch import Elastic",
                "Elastic(nnodes=1, nproc_per_node=2)"),
}

DAG = '''from datetime import datetime

from airflow.sdk import dag, task
{imports}


@dag(dag_id="bench_{engine}", schedule=None, start_date=datetime(2025, 1, 1), catchup=False)
def bench_{engine}():
    @{decorator}
    def square(x: int) -> int:
        return x * x

    @{decorator}
    def total(values: list[int]) -> int:
        return sum(values)

    total(square.expand(x=[1, 2, 3]))


bench_{engine}()
'''

PARSE = """
import time
import airflow.sdk  # the DAG processor has this loaded already
_sdk = time.process_time()
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
bag = BundleDagBag(dag_folder=sys.argv[1], bundle_path=Path(sys.argv[1]))
assert not bag.import_errors, bag.import_errors
assert len(bag.dags) == 4, sorted(bag.dags)
_end = time.process_time()
print("RESULT " + json.dumps({{"parse": _end - _sdk, "modules": len(sys.modules),
    "engines": sorted(m for m in sys.modules if m.split(".")[0] in {engines!r})}}))
"""

IMPORT = """
import time
import airflow.sdk
_sdk = time.process_time()
import json, sys
_before = len(sys.modules)
{statement}
_end = time.process_time()
print("RESULT " + json.dumps({{"parse": _end - _sdk, "modules": len(sys.modules) - _before,
    "engines": sorted(m for m in sys.modules if m.split(".")[0] in {engines!r})}}))
"""


def write_dags(root: Path) -> dict[str, Path]:
    folders = {"flyte": root / "flyte", "plain": root / "plain"}
    for side, folder in folders.items():
        folder.mkdir(parents=True)
        for engine, (imports, config) in CONFIGS.items():
            if side == "flyte":
                text = DAG.format(engine=engine, decorator=f"flyte_task(plugin_config={config})",
                                  imports="\nfrom airflow_provider_flyte import flyte_task\n" + imports)
            else:
                text = DAG.format(engine=engine, decorator="task", imports="")
            (folder / f"bench_{engine}.py").write_text(text)
    return folders


def _measure(code: str, *args: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__DAGS_FOLDER")}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return {**json.loads(line[7:]), "wall": wall}


def run(trials: int) -> list[dict[str, object]]:
    engines = set(ENGINE_PACKAGES)
    with tempfile.TemporaryDirectory(prefix="flyte-bench-parse-") as tmp:
        folders = write_dags(Path(tmp))
        cases = {
            "parse 4 DAGs, plain @task": (PARSE.format(engines=engines), str(folders["plain"])),
            "parse 4 DAGs, @flyte_task": (PARSE.format(engines=engines), str(folders["flyte"])),
        }
        imports = {
            "import nothing more": IMPORT.format(statement="pass", engines=engines),
            "import airflow_provider_flyte": IMPORT.format(
                statement="import airflow_provider_flyte\nfrom airflow_provider_flyte import flyte_task, ctx\n"
                + "\n".join(i for i, _ in CONFIGS.values()), engines=engines),
        }
        results: dict[str, list[dict[str, object]]] = {name: [] for name in [*cases, *imports]}
        for trial in range(trials):
            for group in (cases, imports):
                names = list(group) if trial % 2 == 0 else list(reversed(group))
                for name in names:
                    spec = group[name]
                    results[name].append(_measure(*spec) if isinstance(spec, tuple) else _measure(spec))
    print(f"# import and parse: {os.cpu_count()} CPUs, {trials} trials per case, A/B alternating, fresh process "
          "with airflow.sdk already imported (CPU seconds of the process, median [min-max])")
    print("| case | time after `import airflow.sdk` | modules loaded | engine modules imported |")
    print("| --- | --- | --- | --- |")
    rows = []
    for name, runs in results.items():
        times = [float(r["parse"]) for r in runs]  # type: ignore[arg-type]
        modules = int(statistics.median(int(r["modules"]) for r in runs))  # type: ignore[call-overload]
        engines_seen = sorted({m for r in runs for m in r["engines"]})  # type: ignore[attr-defined]
        rows.append({"case": name, "time": statistics.median(times), "modules": modules, "engines": engines_seen})
        label = "modules in sys.modules" if name.startswith("parse") else "modules added"
        print(f"| {name} | {statistics.median(times):.3f} [{min(times):.3f}-{max(times):.3f}] "
              f"| {modules} ({label}) | {', '.join(engines_seen) or 'none'} |", flush=True)
    plain, flyte = rows[0], rows[1]
    print(f"@flyte_task parse vs plain @task: {flyte['time'] - plain['time']:+.3f} s "  # type: ignore[operator]
          f"({flyte['time'] / plain['time']:.2f}x), {flyte['modules'] - plain['modules']:+d} modules")  # type: ignore[operator]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--source-only", action="store_true",
                        help="leave the provider without bytecode (every process compiles it from source)")
    args = parser.parse_args()
    if not args.source_only:
        import airflow_provider_flyte

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from bench.install_like import compile_like_an_install

        compile_like_an_install(Path(airflow_provider_flyte.__file__).parent)
    rows = run(args.trials)
    if any(r["engines"] for r in rows):
        sys.exit("an engine was imported at parse time")


if __name__ == "__main__":
    main()
