"""Run a DAG file through Airflow the way the DAG processor loads it, and collect results."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunResult:
    """States and XCom return values of one ``dag.test()`` run."""

    state: str
    run_id: str
    states: dict[tuple[str, int], str] = field(default_factory=dict)
    xcoms: dict[tuple[str, int], Any] = field(default_factory=dict)

    def value(self, task_id: str, map_index: int = -1) -> Any:
        return self.xcoms[(task_id, map_index)]

    def mapped_values(self, task_id: str) -> list[Any]:
        keys = sorted(k for k in self.xcoms if k[0] == task_id and k[1] >= 0)
        return [self.xcoms[k] for k in keys]

    def mapped_states(self, task_id: str) -> list[str]:
        keys = sorted(k for k in self.states if k[0] == task_id and k[1] >= 0)
        return [self.states[k] for k in keys]


class DagRunner:
    """Load DAG files with ``BundleDagBag`` and run them with ``dag.test()``."""

    def load(self, dag_file: str | Path, dag_id: str | None = None) -> Any:
        from airflow.dag_processing.dagbag import BundleDagBag

        dag_file = Path(dag_file)
        bundle = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        if not dag_file.is_absolute():
            dag_file = bundle / dag_file
        if bundle not in dag_file.parents:
            bundle = dag_file.parent
        bag = BundleDagBag(dag_folder=str(dag_file), bundle_path=bundle)
        if bag.import_errors:
            raise ImportError(f"DAG import errors: {bag.import_errors}")
        if dag_id is None:
            (dag_id,) = bag.dags
        return bag.dags[dag_id]

    def import_errors(self, dag_file: str | Path) -> dict[str, str]:
        from airflow.dag_processing.dagbag import BundleDagBag

        bundle = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
        bag = BundleDagBag(dag_folder=str(bundle / dag_file), bundle_path=bundle)
        return dict(bag.import_errors)

    def run(self, dag_file: str | Path, dag_id: str | None = None, run_conf: dict[str, Any] | None = None) -> RunResult:
        dag = self.load(dag_file, dag_id)
        return self.run_dag(dag, run_conf=run_conf)

    def run_dag(self, dag: Any, run_conf: dict[str, Any] | None = None) -> RunResult:
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        dr = dag.test(run_conf=run_conf)
        result = RunResult(state=str(dr.state), run_id=dr.run_id)
        with create_session() as session:
            for ti in dr.get_task_instances(session=session):
                result.states[(ti.task_id, ti.map_index)] = str(ti.state)
            rows = session.query(XComModel).filter_by(dag_id=dag.dag_id, run_id=dr.run_id, key="return_value")
            for row in rows:
                # row.value is already JSON-decoded; deserialize_value would json.loads it again ("2" -> 2).
                result.xcoms[(row.task_id, row.map_index)] = row.value
        return result
