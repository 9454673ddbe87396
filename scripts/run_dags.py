"""Run every DAG in a folder with dag.test() and print one line per DAG; exit 1 if any failed."""

from __future__ import annotations

import sys
from pathlib import Path

from airflow.dag_processing.dagbag import BundleDagBag


def main(folder: str, *only: str) -> int:
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder))
    if bag.import_errors:
        for path, error in bag.import_errors.items():
            print(f"IMPORT ERROR {path}:\n{error}")
        return 1
    failed = []
    for dag_id in sorted(bag.dags):
        if only and dag_id not in only:
            continue
        run = bag.dags[dag_id].test()
        print(f"{dag_id}: {run.state}", flush=True)
        if str(run.state) != "success":
            failed.append(dag_id)
    print("failed: " + ", ".join(failed) if failed else "all example DAGs succeeded")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
