"""Issue 13: a successful task of each engine logs no error and no traceback, and a secret in its
config (a sensitive key, Airflow's rules) is masked in the task log, the rendered fields and XCom,
while the engine still gets the real value."""

from __future__ import annotations

import hashlib
import json
import re
import secrets as pysecrets
import signal

import pytest

from tests.conftest import TEST_DAGS
from tests.support.procs import start_dag_process, terminate_group

DAG_FILE = "quiet_engines_dag.py"
RUN_TIMEOUT_S = 300
TASKS = {"spark": "spark_secret", "ray": "ray_secret", "dask": "dask_secret", "elastic": "elastic_secret"}
#: an error-level line, as stdlib logging, structlog's console renderer and the engines print it
ERROR_LINE = re.compile(r"\bERROR\b|\[error\s*\]|\bCRITICAL\b|\[critical\s*\]")


@pytest.fixture
def planted(monkeypatch):
    value = "planted-" + pysecrets.token_hex(12)
    monkeypatch.setenv("FLYTE_TEST_PLANTED_SECRET", value)
    return value


def _stored(dag_id: str) -> tuple[str, dict, list, list]:
    """The latest run of ``dag_id``: its run id, return values, every XCom and the rendered fields."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None, f"no run of {dag_id}"
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run.run_id).all()
        values = {x.task_id: x.value for x in rows if x.key == "return_value"}
        rendered = [r.rendered_fields for r in
                    session.query(RenderedTaskInstanceFields).filter_by(dag_id=dag_id, run_id=run.run_id)]
        return run.run_id, values, [x.value for x in rows], rendered


@pytest.mark.parametrize("engine", list(TASKS))
def test_task_log_is_quiet_and_the_secret_reaches_only_the_engine(engine, planted):
    # The run's own process, as a worker runs it: its whole output is the task log.
    dag_id = f"quiet_{engine}"
    proc = start_dag_process(TEST_DAGS / DAG_FILE, dag_id)
    try:
        log, _ = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
    assert "DAGRUN_STATE=success" in log, log[-6000:]
    _, values, xcoms, rendered = _stored(dag_id)
    value = values[TASKS[engine]]
    assert value["sha256"] == hashlib.sha256(planted.encode()).hexdigest(), "the engine did not get the secret"

    # The task log: the run's config line is there, with the secret masked; nothing at error level.
    assert planted not in log, "the planted secret is in the task log"
    assert "Running " in log, log[-3000:]
    if engine in ("spark", "ray"):  # the secret is in the config (Dask's and Elastic's are in env_vars)
        assert "***" in log, log[-3000:]
    errors = [line for line in log.splitlines() if ERROR_LINE.search(line)]
    assert not errors, "error-level lines in a successful task's log:\n" + "\n".join(errors[:20])
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 2000):][:5000]
    # Engine noise that used to be in every log of its engine.
    assert "Token authentication is enabled for this Ray cluster" not in log  # RAY_AUTH_MODE=token is explicit
    assert ":8787" not in log  # the local Dask scheduler takes a free port, never the dashboard's
    assert "CommClosedError" not in log

    # What Airflow stores for the UI and downstream tasks.
    assert xcoms and rendered
    assert all(planted not in json.dumps(x, default=str) for x in xcoms)
    assert all(planted not in json.dumps(r, default=str) for r in rendered), rendered
    if engine == "spark":
        assert "'fs.s3a.secret.key': '***'" in json.dumps(rendered, default=str), rendered


def test_config_repr_masks_sensitive_keys_with_airflows_rules(planted):
    from airflow_provider_flyte.plugins.ray import RayJobConfig, WorkerNodeConfig
    from airflow_provider_flyte.plugins.spark import Spark

    spark = Spark(spark_conf={"spark.hadoop.fs.s3a.access.key": planted, "spark.executor.instances": "2"},
                  hadoop_conf={"fs.s3a.secret.key": planted})
    ray = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="w", replicas=1)],
                       runtime_env={"env_vars": {"MY_TOKEN": planted, "OMP_NUM_THREADS": "1"}})
    for config in (spark, ray):
        assert planted not in repr(config) and planted not in str(config)
        assert "***" in repr(config)
    assert "'spark.executor.instances': '2'" in repr(spark)  # only sensitive keys are hidden
    assert "'OMP_NUM_THREADS': '1'" in repr(ray)
    # the engine's copy keeps the value
    assert spark.effective_conf()["spark.hadoop.fs.s3a.secret.key"] == planted
    from airflow.sdk.log import redact

    assert redact(f"x {planted} y") == "x *** y"  # registered with Airflow's masker at construction
