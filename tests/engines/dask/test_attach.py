"""Dask on an existing scheduler, through dag.test(): ``dask scheduler`` + ``dask worker`` on 127.0.0.1,
started by this module (tests/support/dask_clusters.py) from a scratch folder with no ``PYTHONPATH``, stopped after.

Submitted functions import ``clusterpkg_dask`` from the DAG folder: only the code bundle (worker and
scheduler plugins) brings it to the workers, so the same DAG with bundling off must fail to import it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.dask import FlyteDaskHook
from airflow_provider_flyte.plugins.dask import Dask
from tests.conftest import TEST_DAGS
from tests.support import dask_clusters
from tests.support.dask_clusters import DaskCluster
from tests.support.procs import alive, descendants, start_dag_process, terminate_group, wait_for
from tests.support.ray_clusters import free_port

dask_cluster = dask_clusters.dask_cluster  # the module-scoped cluster fixture

DAG_FILE = "dask_cluster_tasks.py"
CONN = "flyte_test_dask"
MISSING_MODULE = "No module named 'clusterpkg_dask'"


@pytest.fixture
def conn(dask_cluster: DaskCluster, monkeypatch):
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN.upper()}", json.dumps(
        {"conn_type": "flyte_dask", "host": "127.0.0.1", "port": dask_cluster.port, "extra": {"connect_timeout": 10}}))
    monkeypatch.delenv("AIRFLOW__FLYTE__CODE_BUNDLE", raising=False)
    return monkeypatch


def _link_xcoms(run_id: str, key: str | None = None) -> dict[str, str]:
    """The dashboard URL each task recorded (``flyte_link_dask_dashboard``), or the XCom ``key``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_flyte.links.base import xcom_key

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="dask_cluster", run_id=run_id,
                                                  key=key or xcom_key("dask_dashboard"))
        return {x.task_id: x.value for x in rows}


def _cluster_state(cluster: DaskCluster) -> dict:
    """Bundle paths left on the workers' and scheduler's sys.path, and the flyte plugins still registered."""
    from distributed import Client

    def bundle_paths() -> list[str]:
        import sys

        return [p for p in sys.path if "flyte-code-bundles" in p]

    def scheduler_view(dask_scheduler=None) -> dict:
        import sys

        return {"paths": [p for p in sys.path if "flyte-code-bundles" in p],
                "plugins": [n for n in dask_scheduler.plugins if n.startswith("flyte-code")],
                "worker_plugins": [n for n in dask_scheduler.worker_plugins if n.startswith("flyte-code")]}

    with Client(cluster.address, timeout=10) as client:
        return {"workers": client.run(bundle_paths), "scheduler": client.run_on_scheduler(scheduler_view)}


def _assert_cluster_clean(cluster: DaskCluster) -> None:
    import dask.config
    from distributed import Client

    state = _cluster_state(cluster)
    assert len(state["workers"]) == 2, "the cluster keeps running with its 2 workers"
    assert all(paths == [] for paths in state["workers"].values()), state
    assert state["scheduler"] == {"paths": [], "plugins": [], "worker_plugins": []}, state
    assert dask.config.get("scheduler-address", None) is None
    assert [c for c in Client._instances if c.status not in ("closed", "closing")] == []


def test_submitted_functions_import_the_dag_folder_package_via_the_bundle(dag_runner, conn, dask_cluster):
    from airflow_provider_flyte.bundle import build_bundle
    from airflow_provider_flyte.links.dask import DaskDashboardLink
    from airflow_provider_flyte.operators.dask import FlyteDaskOperator

    started = time.monotonic()
    result = dag_runner.run(DAG_FILE, "dask_cluster")
    took = time.monotonic() - started
    assert result.state == "success", result.states

    value = result.value("on_cluster")
    assert value["address"] == dask_cluster.address and value["same_as_task_client"] is True
    assert len(value["results"]) == 2
    for res in value["results"]:
        assert res["ok"] is True, res
        # Imported from the bundle zip installed in the worker's local folder, not from the DAG folder.
        digest = build_bundle(TEST_DAGS).digest
        assert f"flyte-code-bundles/{digest}.zip/clusterpkg_dask/probe.py" in res["file"], res["file"]
        assert str(TEST_DAGS) not in res["file"] and res["pid"] != value["task_pid"]
        assert res["airflow_loaded"] is False
    assert sorted(r["value"] for r in value["results"]) == [0, 1]

    late = result.value("late_worker")
    assert late["ok"] is True, late  # a worker that joined after the plugins were registered got the bundle
    assert late["worker"] not in value["workers"] and late["value"] == 49

    links = _link_xcoms(result.run_id)
    assert links == {"on_cluster": dask_cluster.dashboard_url, "late_worker": dask_cluster.dashboard_url}
    # what Airflow stored for the UI's buttons at the end of each task
    ui = _link_xcoms(result.run_id, "_link_DaskDashboardLink")
    assert ui["on_cluster"] == ui["late_worker"] == dask_cluster.dashboard_url
    assert _link_xcoms(result.run_id, "_link_KubernetesJobLink")["on_cluster"] == ""  # unused: empty
    with urllib.request.urlopen(dask_cluster.dashboard_url, timeout=10) as resp:
        assert resp.status == 200
    assert any(isinstance(link, DaskDashboardLink) for link in FlyteDaskOperator.operator_extra_links)

    _assert_cluster_clean(dask_cluster)
    print(f"dag run on the Dask cluster took {took:.1f}s")


def test_without_the_bundle_the_workers_cannot_import_the_package(dag_runner, conn, dask_cluster):
    conn.setenv("AIRFLOW__FLYTE__CODE_BUNDLE", "false")
    result = dag_runner.run(DAG_FILE, "dask_cluster")
    value = result.value("on_cluster")
    assert len(value["results"]) == 2
    for res in value["results"]:
        assert res["ok"] is False and MISSING_MODULE in res["error"], res
    late = result.value("late_worker")
    assert late["ok"] is False and MISSING_MODULE in late["error"], late
    _assert_cluster_clean(dask_cluster)


def test_a_down_scheduler_fails_fast_naming_the_connection(monkeypatch):
    port = free_port()
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_DASK_DOWN", json.dumps(
        {"conn_type": "flyte_dask", "host": f"tcp://127.0.0.1:{port}", "extra": {"connect_timeout": 2}}))
    hook = FlyteDaskHook(Dask(), conn_id="flyte_test_dask_down")
    started = time.monotonic()
    with pytest.raises(FlyteEngineError) as err, hook.session():
        pass
    assert time.monotonic() - started < 15
    assert f"connection 'flyte_test_dask_down' (tcp://127.0.0.1:{port})" in str(err.value)


@pytest.mark.parametrize(("conn_spec", "address"), [
    ({"conn_type": "flyte_dask", "host": "sched.example"}, "tcp://sched.example:8786"),
    ({"conn_type": "flyte_dask", "host": "sched.example", "port": 9000}, "tcp://sched.example:9000"),
    ({"conn_type": "flyte_dask", "host": "tls://sched.example:8789"}, "tls://sched.example:8789"),
])
def test_connection_spellings(conn_spec, address, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_DASK_SPELL", json.dumps(conn_spec))
    assert FlyteDaskHook(Dask(), conn_id="flyte_test_dask_spell").cluster_target().address == address


def test_non_dask_address_is_rejected_with_a_fix(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_DASK_HTTP", json.dumps(
        {"conn_type": "flyte_dask", "host": "http://sched:8787"}))
    with pytest.raises(FlyteConfigError, match=r"connection 'flyte_test_dask_http'\.host: not a Dask scheduler"):
        FlyteDaskHook(Dask(), conn_id="flyte_test_dask_http").cluster_target()


# -- SIGTERM to a task on the cluster ----------------------------------------------------------------
def test_sigterm_to_a_cluster_task_leaves_no_client_or_task_on_the_scheduler(conn, dask_cluster, tmp_path):
    """SIGTERM to the task process (Airflow's kill) runs on_kill while the process lives on: the
    scheduler must then hold no client of the task (the hook's and the user's own) and no task of it.
    Asked of the scheduler through a client of the test's own, not of the hook."""
    from distributed import Client

    def of_the_task(info: dict) -> list[str]:
        def scheduler_view(dask_scheduler=None) -> dict:
            return {"clients": list(dask_scheduler.clients),
                    "tasks": {str(k): ts.state for k, ts in dask_scheduler.tasks.items()}}

        with Client(dask_cluster.address, timeout=10) as client:
            view = client.run_on_scheduler(scheduler_view)
        found = [f"client {c}" for c in info["client_ids"] if c in view["clients"]]
        return found + [f"task {k}: {state}" for k, state in view["tasks"].items() if k == info["key"]]

    scratch = tmp_path / "kill"
    scratch.mkdir()
    proc = start_dag_process("dask_cluster_kill.py", "dask_cluster_kill", env={"FLYTE_TEST_KILL_DIR": str(scratch)})
    try:
        wait_for(lambda: ((scratch / "info.json").exists() and list(scratch.glob("started-*.json")))
                 or proc.poll() is not None, timeout=150, what="the submitted function to run on a worker")
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        info = json.loads((scratch / "info.json").read_text())
        assert len(info["client_ids"]) == 2, info
        # The same check sees the task's clients and its running task (so it can see an orphan).
        before = of_the_task(info)
        assert len(before) == 3 and f"task {info['key']}: processing" in before, before
        local = alive(descendants(proc.pid))

        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            out = ""
        exited = proc.poll() is not None
        deadline = time.monotonic() + 30
        left = of_the_task(info)
        while left and time.monotonic() < deadline:
            time.sleep(0.5)
            left = of_the_task(info)
        assert left == [], f"left on the scheduler after SIGTERM\n{out[-3000:]}"
        assert exited, "the task process should end once its clients were closed"
        assert alive(local) == [], f"local children of the task left: {alive(local)}"
        assert "Task killed: tearing down" in out and "DAGRUN_STATE=failed" in out, out[-3000:]
        assert dask_cluster.n_workers() == 2, "the cluster itself keeps running"
    finally:
        (scratch / "stop").touch()
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
