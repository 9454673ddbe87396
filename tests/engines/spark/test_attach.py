"""Spark on existing clusters, through dag.test(): a standalone master + worker and a Spark
Connect server, both started on 127.0.0.1 by this module and stopped afterwards.

The UDFs import ``clusterpkg_spark`` from the DAG folder. The clusters run from scratch
directories with no ``PYTHONPATH``, so only the code bundle can bring that package to them:
the same DAG with bundling off must fail to import it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import psutil
import pytest

from tests.conftest import TEST_DAGS
from tests.support.procs import (
    alive,
    descendants,
    eventually_empty,
    processes_matching,
    start_dag_process,
    terminate_group,
    wait_for,
)
from tests.support.spark_clusters import (  # noqa: F401  (the *_fixture names register the fixtures)
    ConnectServer,
    Standalone,
    free_port,
    port_open,
    spark_connect_server_fixture,
    spark_standalone_fixture,
)

DAG_FILE = "spark_cluster_tasks.py"
MASTER_CONN = "flyte_test_spark_master"
CONNECT_CONN = "flyte_test_spark_connect"
DOWN_CONN = "flyte_test_spark_down"
MISSING_MODULE = "No module named 'clusterpkg_spark'"


def _conn_env(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@pytest.fixture
def cluster_conns(spark_standalone: Standalone, spark_connect_server: ConnectServer, monkeypatch):
    """The apache-spark provider's connection spellings: host without port, port apart, token as password."""
    monkeypatch.setenv(_conn_env(MASTER_CONN), json.dumps(
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": spark_standalone.port}))
    # A token needs TLS unless the host is "localhost" (pyspark uses local channel credentials then).
    monkeypatch.setenv(_conn_env(CONNECT_CONN), json.dumps(
        {"conn_type": "spark_connect", "host": "sc://localhost", "port": spark_connect_server.port,
         "password": spark_connect_server.token}))
    monkeypatch.setenv(_conn_env(DOWN_CONN), json.dumps(
        {"conn_type": "flyte_spark", "host": f"spark://127.0.0.1:{free_port()}"}))
    monkeypatch.delenv("AIRFLOW__FLYTE__CODE_BUNDLE", raising=False)
    return monkeypatch


def _java_children() -> list[psutil.Process]:
    """JVMs this process started in its own process group: the driver's (the clusters have their own)."""
    mine = os.getpgid(0)
    found = []
    for proc in alive(descendants(os.getpid())):
        try:
            if "java" in proc.name() and os.getpgid(proc.pid) == mine:
                found.append(proc)
        except (psutil.NoSuchProcess, ProcessLookupError):
            pass
    return found


def _task_rows(run_id: str) -> dict[str, dict]:
    """Per task: duration in seconds and the Spark UI link XCom, from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_flyte.links.base import xcom_key

    rows: dict[str, dict] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id="spark_cluster", run_id=run_id):
            took = (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else None
            rows[ti.task_id] = {"duration": took, "link": None}
        for x in session.query(XComModel).filter_by(dag_id="spark_cluster", run_id=run_id, key=xcom_key("spark_ui")):
            rows[x.task_id]["link"] = x.value
    return rows


def _assert_clean_driver() -> None:
    from pyspark import SparkContext

    assert SparkContext._active_spark_context is None
    assert SparkContext._gateway is None
    assert _java_children() == [], "the task's driver JVM should be gone"
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


def test_udf_imports_dag_folder_package_on_master_and_connect(
    dag_runner, cluster_conns, spark_standalone, spark_connect_server, capfd
):
    from airflow_provider_flyte.bundle import build_bundle

    digest = build_bundle(TEST_DAGS).digest
    started = time.monotonic()
    result = dag_runner.run(DAG_FILE, "spark_cluster")
    took = time.monotonic() - started
    output = capfd.readouterr()
    states = {task: state for (task, _), state in result.states.items()}
    assert states == {"on_connect": "success", "on_master": "success", "on_down": "failed"}, (
        f"{states}\n{(output.out + output.err)[-6000:]}")

    # Standalone master: the UDF ran in an executor under the worker's work dir, importing the
    # package from the bundle zip; spark_conf reached the driver and the application.
    master = result.value("on_master")
    assert master["ok"], master.get("error")
    assert [int(r["value"]) for r in master["rows"]] == [0, 10, 20]
    for row in master["rows"]:
        assert f"{digest}.zip" in row["file"], row
        assert row["cwd"].startswith(str(spark_standalone.worker_dir)), row
        assert int(row["pid"]) != master["task_pid"]
    assert master["master"] == spark_standalone.master_url
    assert master["app_name"] == "spark_cluster.on_master"
    assert (master["shuffle_partitions"], master["time_zone"], master["executor_memory"]) == ("3", "Asia/Tokyo", "512m")
    assert master["executor_env"] == "from-env-vars"
    apps = {a["id"]: a for a in spark_standalone.master_state()["completedapps"]}
    app = apps[master["app_id"]]
    assert (app["name"], app["memoryperexecutor"], app["cores"]) == ("spark_cluster.on_master", 512, 1)

    # Spark UI link: the URL the task's session served (HTTP 200 during the task) went to XCom.
    rows = _task_rows(result.run_id)
    assert master["ui"].startswith("http://") and master["ui_status"] == 200
    assert rows["on_master"]["link"] == master["ui"]
    assert rows["on_connect"]["link"] is None

    # Spark Connect: the UDF ran in the server's Python worker, importing from the uploaded artifact;
    # runtime SQL settings applied; static ones were rejected with a warning, not an error.
    remote = result.value("on_connect")
    assert remote["ok"], remote.get("error")
    assert remote["is_remote"] == "pyspark.sql.connect.session"
    assert [int(r["value"]) for r in remote["rows"]] == [0, 10, 20]
    for row in remote["rows"]:
        assert f"{digest}.zip" in row["file"], row
        assert row["cwd"].startswith(str(spark_connect_server.procs.workdir)), row
    assert (remote["shuffle_partitions"], remote["time_zone"]) == ("3", "Asia/Tokyo")
    # The rejected-settings warning names the static property (the run's config line also holds it).
    rejected = [line for line in (output.out + output.err).splitlines()
                if "Spark Connect does not let a session set these properties" in line]
    assert rejected and "spark.executor.memory (" in rejected[0], rejected

    # A master that is down: the task failed within the default 10 s probe, naming conn and address.
    assert rows["on_down"]["duration"] is not None and rows["on_down"]["duration"] < 30, rows["on_down"]
    down_url = json.loads(os.environ[_conn_env(DOWN_CONN)])["host"]
    assert f"connection '{DOWN_CONN}' ({down_url})" in output.out + output.err

    # The task stopped its session and driver JVM, and left the Connect server running.
    _assert_clean_driver()
    assert spark_connect_server.procs.procs[0].poll() is None and port_open(spark_connect_server.port)
    print(f"dag run with both clusters took {took:.1f}s")


def test_without_the_bundle_the_clusters_cannot_import_the_package(dag_runner, cluster_conns):
    cluster_conns.setenv("AIRFLOW__FLYTE__CODE_BUNDLE", "false")
    cluster_conns.setenv(_conn_env(DOWN_CONN), json.dumps(
        {"conn_type": "flyte_spark", "host": f"spark://127.0.0.1:{free_port()}", "extra": {"connect_timeout": 1}}))
    result = dag_runner.run(DAG_FILE, "spark_cluster")
    for task in ("on_master", "on_connect"):
        value = result.value(task)
        assert value["ok"] is False, value
        assert MISSING_MODULE in value["error"], value["error"]
    _assert_clean_driver()


@pytest.mark.parametrize(
    "conn",
    [
        {"conn_type": "flyte_spark", "host": "sc://127.0.0.1:{port}"},
        {"conn_type": "spark", "host": "spark://127.0.0.1", "port": "{port}"},
    ],
    ids=["connect", "master"],
)
def test_cluster_down_fails_fast_naming_connection_and_address(conn, monkeypatch):
    from pyspark import SparkContext

    from airflow_provider_flyte.exceptions import FlyteEngineError
    from airflow_provider_flyte.hooks.spark import FlyteSparkHook
    from airflow_provider_flyte.plugins.spark import Spark

    port = free_port()
    spec = {k: (v.format(port=port) if isinstance(v, str) else v) for k, v in conn.items()}
    spec["extra"] = {"connect_timeout": 2}
    monkeypatch.setenv(_conn_env("flyte_test_down_direct"), json.dumps(spec))
    hook = FlyteSparkHook(Spark(), conn_id="flyte_test_down_direct")
    scheme = "sc" if "sc://" in spec["host"] else "spark"
    started = time.monotonic()
    with pytest.raises(FlyteEngineError) as err, hook.session():
        pass
    assert time.monotonic() - started < 30
    assert f"connection 'flyte_test_down_direct' ({scheme}://127.0.0.1:{port})" in str(err.value)
    assert SparkContext._gateway is None, "no JVM may start for a cluster that is down"
    assert "SPARK_CONNECT_MODE_ENABLED" not in os.environ


@pytest.mark.parametrize(
    ("conn", "address", "connect_url"),
    [
        ({"conn_type": "spark", "host": "spark://m.example"}, "spark://m.example:7077", None),
        ({"conn_type": "spark", "host": "spark://m.example", "port": 7078}, "spark://m.example:7078", None),
        ({"conn_type": "flyte_spark", "host": "m.example"}, "spark://m.example:7077", None),
        ({"conn_type": "spark_connect", "host": "c.example"}, "sc://c.example:15002", "sc://c.example:15002"),
        ({"conn_type": "spark_connect", "host": "sc://c.example", "port": 443, "login": "ann", "password": "t/k",
          "extra": {"use_ssl": True}}, "sc://c.example:443", "sc://c.example:443/;token=t%2Fk;user_id=ann;use_ssl=true"),
        ({"conn_type": "flyte_spark", "host": "sc://c.example:15003/;use_ssl=true", "password": "tok"},
         "sc://c.example:15003/;use_ssl=true", "sc://c.example:15003/;use_ssl=true;token=tok"),
    ],
)
def test_connection_spellings(conn, address, connect_url, monkeypatch):
    from airflow_provider_flyte.hooks.spark import FlyteSparkHook
    from airflow_provider_flyte.plugins.spark import Spark

    monkeypatch.setenv(_conn_env("flyte_test_spelling"), json.dumps(conn))
    hook = FlyteSparkHook(Spark(), conn_id="flyte_test_spelling")
    target = hook._cluster_target()
    assert target.address == address
    if connect_url is not None:
        assert hook.connect_url(target) == connect_url


@pytest.mark.parametrize("host", ["yarn", "local", "local[2]", "k8s://https://api:6443"])
def test_non_standalone_masters_are_rejected_with_a_fix(host, monkeypatch):
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.hooks.spark import FlyteSparkHook
    from airflow_provider_flyte.plugins.spark import Spark

    monkeypatch.setenv(_conn_env("flyte_test_yarn"), json.dumps({"conn_type": "spark", "host": host}))
    # "local[2]" is not even a host address: refused when the connection is parsed, also with a fix
    with pytest.raises(FlyteConfigError, match=r"(standalone master|not a host address).*Fix:"):
        FlyteSparkHook(Spark(), conn_id="flyte_test_yarn")._cluster_target()


# -- SIGTERM to a task on a cluster ------------------------------------------------------------------
KILL_DAG_FILE = "spark_cluster_kill.py"
EXECUTOR_CLASS = "CoarseGrainedExecutorBackend"


def _started(scratch) -> list[dict]:  # type: ignore[no-untyped-def]
    return [json.loads(p.read_text()) for p in scratch.glob("started-*.json")]


def _executor_jvms(app_id: str) -> list[psutil.Process]:
    """The worker's executor JVMs for ``app_id`` (found by their command line)."""
    return [p for p in alive(processes_matching(EXECUTOR_CLASS)) if app_id in " ".join(p.cmdline())]


@pytest.mark.parametrize("mode", ["master", "connect"])
def test_sigterm_to_a_cluster_task_leaves_nothing_running_on_the_cluster(mode, cluster_conns, spark_standalone,
                                                                         tmp_path):
    """SIGTERM to the task process (Airflow's kill) runs on_kill while the process lives on: the
    master must then show the application finished with no executor left, and on Spark Connect
    the job's Python worker must be gone. Asked of the cluster, not of the hook."""
    scratch = tmp_path / "kill"
    scratch.mkdir()
    proc = start_dag_process(KILL_DAG_FILE, f"spark_cluster_kill_{mode}", env={"FLYTE_TEST_KILL_DIR": str(scratch)})
    try:
        wait_for(lambda: ((scratch / "info.json").exists() and _started(scratch)) or proc.poll() is not None,
                 timeout=150, what=f"the Spark job to run on the {mode}")
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        info = json.loads((scratch / "info.json").read_text())
        (job,) = _started(scratch)
        job_proc = psutil.Process(job["pid"])
        local = alive(descendants(proc.pid))
        if mode == "master":
            app_id = info["app_id"]
            # The checks below see the application while it runs (so they can see an orphan).
            assert app_id in {a["id"] for a in spark_standalone.master_state()["activeapps"]}
            assert _executor_jvms(app_id), "the application should have an executor on the worker"
            assert local, "the task should have started its driver JVM"

        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            out = ""
        exited = proc.poll() is not None

        def on_cluster() -> list[str]:
            found = []
            if mode == "master":
                state = spark_standalone.master_state()
                if app_id in {a["id"] for a in state["activeapps"]}:
                    found.append(f"application {app_id} still active on the master")
                if app_id not in {a["id"] for a in state["completedapps"]}:
                    found.append(f"application {app_id} not among the master's completed apps")
                found += [f"executor JVM {p.pid} of {app_id}" for p in _executor_jvms(app_id)]
            found += [f"job's Python worker {p.pid}" for p in alive([job_proc])]
            return found

        assert eventually_empty(on_cluster, timeout=30) == [], f"left on the cluster after SIGTERM\n{out[-3000:]}"
        assert exited, "the task process should end once its job was stopped"
        assert alive(local) == [], f"local children of the task left: {alive(local)}"
        assert not (scratch / "finished").exists(), "the job ran to its end"
        assert "DAGRUN_STATE=failed" in out, out[-3000:]
    finally:
        (scratch / "stop").touch()
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
