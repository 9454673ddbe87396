"""The smoke subset, run by ``smoke.py`` with a smoke venv's interpreter (not the dev venv).

1. The provider is the installed wheel (not a source tree) and the pinned versions are the
   ones installed; Airflow's ProvidersManager lists the distribution.
2. Every example DAG shipped in the wheel parses the way the DAG processor loads it, with no
   import error.
3. One small task per engine runs through ``dag.test()``: the Spark, Ray and Dask example
   DAGs (local engines), each checked by its XCom return value.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

EXPECTED_DAGS = {
    "example_flyte_spark", "example_flyte_ray", "example_flyte_dask", "example_flyte_pytorch",
    "example_flyte_cluster_params", "example_flyte_scaling_controller",
}
RUN = {  # dag_id -> (task_id, check of its return value)
    "example_flyte_spark": ("process_data", lambda v: v["count"] == 999),
    "example_flyte_ray": ("ray_task", lambda v: v == [0, 1, 4]),
    "example_flyte_dask": ("dask_task", lambda v: v["sum_of_squares"] == sum(i * i for i in range(100))),
}


def step(title: str) -> None:
    print(f"--- {title}", flush=True)


def load_bag(folder: Path):
    try:
        from airflow.dag_processing.dagbag import BundleDagBag
    except ImportError:  # pragma: no cover - older layouts
        from airflow.models.dagbag import DagBag

        return DagBag(dag_folder=str(folder), include_examples=False)
    return BundleDagBag(dag_folder=str(folder), bundle_path=folder)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--expect-dist", required=True)
    ap.add_argument("--expect", nargs="*", default=[])
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="flyte-smoke-home-"))
    try:
        os.environ.update({
            "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAG_DISCOVERY_SAFE_MODE": "False",
        })
        step("installed versions")
        import airflow_provider_flyte

        pkg_dir = Path(airflow_provider_flyte.__file__).resolve().parent
        assert "site-packages" in pkg_dir.parts, f"provider imported from {pkg_dir}, not from the installed wheel"
        print(f"python {sys.version.split()[0]}; provider {version(args.expect_dist)} at {pkg_dir}")
        for name in ("apache-airflow", "apache-airflow-task-sdk", "apache-airflow-providers-common-compat",
                     "pyspark", "ray", "dask", "distributed"):
            print(f"  {name}=={version(name)}")
        for pin in args.expect:
            name, _, want = pin.partition("==")
            assert version(name) == want, f"{name}: installed {version(name)}, expected {want}"

        dags = home / "dags"
        shutil.copytree(pkg_dir / "example_dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
        step("airflow db migrate")
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if migrate.returncode != 0:
            print(migrate.stderr[-4000:])
            print("airflow db migrate failed")
            return 1

        step("provider registered")
        from airflow.providers_manager import ProvidersManager

        providers = ProvidersManager().providers
        assert args.expect_dist in providers, f"{args.expect_dist} not in {sorted(providers)}"

        step("parse the example DAGs shipped in the wheel")
        bag = load_bag(pkg_dir / "example_dags")
        if bag.import_errors:
            for path, error in bag.import_errors.items():
                print(f"IMPORT ERROR {path}:\n{error}")
            return 1
        missing = EXPECTED_DAGS - set(bag.dags)
        assert not missing, f"example DAGs missing: {sorted(missing)} (parsed {sorted(bag.dags)})"
        print(f"parsed {len(bag.dags)} DAGs: {', '.join(sorted(bag.dags))}")

        run_bag = load_bag(dags)
        assert not run_bag.import_errors, run_bag.import_errors
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        failed = []
        for dag_id, (task_id, check) in RUN.items():
            step(f"run {dag_id}")
            started = time.monotonic()
            dr = run_bag.dags[dag_id].test()
            with create_session() as session:
                row = session.query(XComModel).filter_by(dag_id=dag_id, run_id=dr.run_id, task_id=task_id,
                                                        key="return_value").one_or_none()
                value = row.value if row is not None else None
            ok = str(dr.state) == "success" and value is not None and check(value)
            print(f"{dag_id}: state={dr.state} {task_id} -> {value!r} "
                  f"({'ok' if ok else 'WRONG'}, {time.monotonic() - started:.0f}s)", flush=True)
            if not ok:
                failed.append(dag_id)
        if failed:
            print("smoke runs failed: " + ", ".join(failed))
            return 1
        print("smoke checks passed")
        return 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
