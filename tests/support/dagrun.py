"""Run a DAG file through Airflow the way the DAG processor loads it, and collect results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.procs import REPO


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


# -- dag.test() in a child process: its whole console output, and a bound on its time -------------------------
#: Runs ``dag.test()`` of argv[1] / argv[2]; prints each task's state and seconds as JSON once it returns.
_CHILD = """
import json, sys
from tests.support.dagrun import DagRunner
runner = DagRunner()
dag = runner.load(sys.argv[1], sys.argv[2])
dr = dag.test()
from airflow.utils.session import create_session
with create_session() as session:
    tis = {ti.task_id: {"state": str(ti.state), "seconds": (ti.end_date - ti.start_date).total_seconds()}
           for ti in dr.get_task_instances(session=session)}
print("DAGRUN=" + json.dumps({"state": str(dr.state), "tasks": tis}), flush=True)
"""


def start_child_run(dag_file: str, dag_id: str) -> subprocess.Popen[str]:
    """``dag.test()`` of ``dag_file`` in a new process (own session), its output on a pipe.

    Its console output is the task log as a fresh process writes it: in the test process, Airflow's
    logging may still be bound to a stream an earlier test captured.
    """
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "RAY_USAGE_STATS_ENABLED": "0"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.Popen([sys.executable, "-c", _CHILD, dag_file, dag_id], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish_child_run(proc: subprocess.Popen[str], timeout: float) -> tuple[str, bool]:
    """The child's output and whether it ended by itself within ``timeout`` (else its group is killed)."""
    try:
        return proc.communicate(timeout=timeout)[0], True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.communicate()[0], False


def child_dagrun(out: str) -> dict[str, Any]:
    """The run's state and each task's state and seconds, as the child printed them."""
    (line,) = [line for line in out.splitlines() if line.startswith("DAGRUN=")]
    return dict(json.loads(line.removeprefix("DAGRUN=")))
