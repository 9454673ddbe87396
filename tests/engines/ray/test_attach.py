"""Ray on an existing cluster, through dag.test(): ``ray start --head`` plus one more node on
127.0.0.1, started by this module (tests/support/ray_clusters.py) and stopped afterwards.

The remote functions run on the second node and import ``clusterpkg_ray`` from the DAG
folder. The nodes run from a scratch directory with no ``PYTHONPATH``, so only the code
bundle can bring that package to them: the same DAG with bundling off must fail to import it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil
import pytest

from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError, FlyteEngineError
from airflow_provider_flyte.hooks.ray import FlyteRayHook
from airflow_provider_flyte.plugins.ray import RayJobConfig
from tests.conftest import TEST_DAGS
from tests.support import ray_clusters
from tests.support.procs import (
    alive,
    descendants,
    eventually_empty,
    start_dag_process,
    terminate_group,
    wait_for,
)
from tests.support.ray_clusters import SECOND_NODE_RESOURCE, RayCluster, free_port

ray_cluster = ray_clusters.ray_cluster  # the module-scoped cluster fixture

DAG_FILE = "ray_cluster_tasks.py"
CLIENT_CONN = "flyte_test_ray_client"
GCS_CONN = "flyte_test_ray_gcs"
DOWN_CONN = "flyte_test_ray_down"
MISSING_MODULE = "No module named 'clusterpkg_ray'"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _conn_env(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


@pytest.fixture
def cluster_conns(ray_cluster: RayCluster, monkeypatch):
    """A Ray Client connection (port apart, namespace extra), a GCS one, and one to a closed port."""
    monkeypatch.setenv(_conn_env(CLIENT_CONN), json.dumps(
        {"conn_type": "flyte_ray", "host": "ray://127.0.0.1", "port": ray_cluster.client_port,
         "password": ray_cluster.token, "extra": {"namespace": "flyte-test"}}))
    monkeypatch.setenv(_conn_env(GCS_CONN), json.dumps(
        {"conn_type": "flyte_ray", "host": ray_cluster.gcs_address, "password": ray_cluster.token}))
    monkeypatch.setenv(_conn_env(DOWN_CONN), json.dumps(
        {"conn_type": "flyte_ray", "host": f"ray://127.0.0.1:{free_port()}", "extra": {"connect_timeout": 3}}))
    for key in ("AIRFLOW__FLYTE__CODE_BUNDLE", "RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def _second_node_id(cluster: RayCluster) -> str:
    (node,) = [n for n in cluster.alive_nodes() if not n["is_head_node"]]
    return str(node["node_id"])


def _task_rows(run_id: str) -> dict[str, dict]:
    """Per task: duration in seconds and the Ray dashboard link XCom, from the metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from airflow_provider_flyte.links.base import xcom_key

    rows: dict[str, dict] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter_by(dag_id="ray_cluster", run_id=run_id):
            took = (ti.end_date - ti.start_date).total_seconds() if ti.end_date and ti.start_date else None
            rows[ti.task_id] = {"duration": took, "link": None}
        for x in session.query(XComModel).filter_by(dag_id="ray_cluster", run_id=run_id, key=xcom_key("ray_dashboard")):
            rows[x.task_id]["link"] = x.value
    return rows


def _auth_env() -> dict[str, str | None]:
    return {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}


def _assert_disconnected(cluster: RayCluster, auth_before: dict[str, str | None]) -> None:
    import ray

    assert not ray.is_initialized()
    assert _auth_env() == auth_before, "the connection's token must not outlive the task"
    cluster.check_running()  # the task disconnected; it never stops the cluster
    assert len(cluster.alive_nodes()) == 2


def test_remote_functions_import_dag_folder_package_on_the_second_node(dag_runner, cluster_conns, ray_cluster, capfd):
    from airflow_provider_flyte.bundle import build_bundle
    from airflow_provider_flyte.links.ray import RayDashboardLink
    from airflow_provider_flyte.operators.ray import FlyteRayOperator

    digest = build_bundle(TEST_DAGS).digest
    second_node = _second_node_id(ray_cluster)
    auth_before = _auth_env()
    started = time.monotonic()
    result = dag_runner.run(DAG_FILE, "ray_cluster")
    took = time.monotonic() - started
    output = capfd.readouterr()
    states = {task: state for (task, _), state in result.states.items()}
    assert states == {"on_client": "success", "on_gcs": "success", "on_down": "failed"}, states

    for task in ("on_client", "on_gcs"):
        value = result.value(task)
        assert value["ok"], value.get("error")
        # Imported on the second node, by a Ray worker of that node, from the uploaded bundle zip.
        assert value["node_id"] == second_node, value
        assert ray_cluster.worker_node.pid in value["ancestors"], value
        assert value["pid"] != value["task_pid"]
        working_dir = Path(value["cwd"])
        assert working_dir.is_relative_to(ray_cluster.base / "w"), value
        assert Path(value["file"]) == working_dir / "clusterpkg_ray" / "probe.py"
        # The bundle left out what is not code (.python_history broke Ray uploads in flytekit#3140).
        assert value["package_files"] == ["__init__.py", "probe.py"], value["package_files"]
        assert (working_dir / "ray_cluster_tasks.py").exists()
        # The config's runtime_env reached the remote function.
        assert value["runtime_env_var"] == "from-runtime-env"
    assert result.value("on_client")["namespace"] == "flyte-test"
    # TaskEnvironment.env_vars join the job's runtime_env on a cluster.
    assert result.value("on_gcs")["task_env_var"] == "from-env-vars"
    # Both tasks shipped the same bundle (Ray names a zip working_dir by its content).
    assert Path(result.value("on_client")["cwd"]).name == Path(result.value("on_gcs")["cwd"]).name
    assert f"{digest[:12]}" in output.out + output.err  # the hook logged the bundle it shipped
    # The GCS-mode driver (this process) listened on loopback only.
    driver_listening = result.value("on_gcs")["driver_listening"]
    assert driver_listening and set(driver_listening) <= LOOPBACK, driver_listening

    # Dashboard link: the head's dashboard URL went to XCom; it answers.
    rows = _task_rows(result.run_id)
    assert rows["on_client"]["link"] == rows["on_gcs"]["link"] == ray_cluster.dashboard_url
    with urllib.request.urlopen(ray_cluster.dashboard_url, timeout=10) as resp:
        assert resp.status == 200
    assert any(isinstance(link, RayDashboardLink) for link in FlyteRayOperator.operator_extra_links)
    assert RayDashboardLink.link_key == "ray_dashboard"

    # A cluster that is down: failed within the 3 s probe, naming the connection and the address.
    assert rows["on_down"]["duration"] is not None and rows["on_down"]["duration"] < 30, rows["on_down"]
    down_url = json.loads(os.environ[_conn_env(DOWN_CONN)])["host"]
    assert f"connection '{DOWN_CONN}' ({down_url})" in output.out + output.err

    _assert_disconnected(ray_cluster, auth_before)
    listening = ray_cluster.listening()  # every server of both nodes, their agents and workers
    assert len(listening) > 10 and {ip for ip, _ in listening} <= LOOPBACK, listening
    print(f"dag run on the Ray cluster took {took:.1f}s")


def test_without_the_bundle_the_cluster_cannot_import_the_package(dag_runner, cluster_conns, ray_cluster):
    cluster_conns.setenv("AIRFLOW__FLYTE__CODE_BUNDLE", "false")
    auth_before = _auth_env()
    result = dag_runner.run(DAG_FILE, "ray_cluster")
    for task in ("on_client", "on_gcs"):
        value = result.value(task)
        assert value["ok"] is False, value
        assert MISSING_MODULE in value["error"], value["error"]
    _assert_disconnected(ray_cluster, auth_before)


def test_address_in_the_config_and_a_working_dir_of_the_users(ray_cluster, monkeypatch, tmp_path):
    """No connection: RayJobConfig.address picks the cluster, the token comes from Ray's env vars.

    The user's own working_dir wins; the bundle's top-level packages then travel as py_modules.
    """
    import ray
    from ray import cloudpickle

    (tmp_path / "marker.txt").write_text("users-working-dir")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", ray_cluster.token)
    monkeypatch.delenv("AIRFLOW__FLYTE__CODE_BUNDLE", raising=False)
    config = RayJobConfig(worker_node_config=[], address=ray_cluster.client_address,
                          runtime_env={"working_dir": str(tmp_path)})
    hook = FlyteRayHook(config, task=TaskInfo(dag_id="adhoc", task_id="address", project_root=TEST_DAGS))

    def remote_where() -> dict:
        from clusterpkg_ray import probe

        return {**probe.where(), "marker": Path("marker.txt").read_text()}

    module = sys.modules[__name__]
    cloudpickle.register_pickle_by_value(module)  # the cluster cannot import this test module
    try:
        with hook.session():
            task = ray.remote(num_cpus=0, resources={SECOND_NODE_RESOURCE: 0.01})(remote_where)
            value = ray.get(task.remote(), timeout=180)
            runtime_env = ray.get_runtime_context().runtime_env
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert value["marker"] == "users-working-dir"
    assert value["node_id"] == _second_node_id(ray_cluster)
    assert "py_modules" in runtime_env and runtime_env["working_dir"].startswith("gcs://")
    assert Path(value["file"]).parts[-2:] == ("clusterpkg_ray", "probe.py")
    assert hook.links["ray_dashboard"] == ray_cluster.dashboard_url
    assert not ray.is_initialized()
    assert os.environ["RAY_AUTH_TOKEN"] == ray_cluster.token  # the user's own setting is left alone


@pytest.mark.parametrize(
    ("conn", "expected"),
    [
        ({"conn_type": "flyte_ray", "host": "ray://127.0.0.1:{port}", "extra": {"connect_timeout": 2}},
         "connection 'flyte_test_ray_down_direct' (ray://127.0.0.1:{port})"),
        ({"conn_type": "flyte_ray", "host": "127.0.0.1", "port": "{port}", "extra": {"connect_timeout": 2}},
         "connection 'flyte_test_ray_down_direct' (gcs://127.0.0.1:{port})"),
        (None, "RayJobConfig.address (gcs://127.0.0.1:{port})"),
    ],
    ids=["client-connection", "gcs-connection", "config-address"],
)
def test_cluster_down_fails_fast_naming_connection_and_address(conn, expected, monkeypatch):
    import ray

    port = free_port()
    if conn is not None:
        spec = {k: (v.format(port=port) if isinstance(v, str) else v) for k, v in conn.items()}
        monkeypatch.setenv(_conn_env("flyte_test_ray_down_direct"), json.dumps(spec))
        hook = FlyteRayHook(RayJobConfig(worker_node_config=[]), conn_id="flyte_test_ray_down_direct")
    else:
        hook = FlyteRayHook(RayJobConfig(worker_node_config=[], address=f"127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(FlyteEngineError) as err, hook.session():
        pass
    assert time.monotonic() - started < 30
    assert expected.format(port=port) in str(err.value)
    assert not ray.is_initialized()


# -- addresses and runtime_env (no cluster needed) ---------------------------------------------------
@pytest.mark.parametrize(
    ("conn", "init_address"),
    [
        ({"conn_type": "flyte_ray", "host": "ray://head.example"}, "ray://head.example:10001"),
        ({"conn_type": "flyte_ray", "host": "ray://head.example", "port": 10002}, "ray://head.example:10002"),
        ({"conn_type": "flyte_ray", "host": "head.example"}, "head.example:6379"),
        ({"conn_type": "flyte_ray", "host": "head.example:6380"}, "head.example:6380"),
        ({"conn_type": "flyte_ray", "host": "gcs://head.example", "port": 6381}, "head.example:6381"),
    ],
)
def test_connection_spellings(conn, init_address, monkeypatch):
    monkeypatch.setenv(_conn_env("flyte_test_ray_spelling"), json.dumps(conn))
    hook = FlyteRayHook(RayJobConfig(worker_node_config=[]), conn_id="flyte_test_ray_spelling")
    assert hook.init_address(hook.cluster_target()) == init_address


@pytest.mark.parametrize(("address", "init_address"), [
    ("ray://h", "ray://h:10001"), ("h:6380", "h:6380"), ("h", "h:6379"), ("auto", "auto"),
])
def test_config_address_spellings(address, init_address):
    hook = FlyteRayHook(RayJobConfig(worker_node_config=[], address=address))
    assert hook.init_address(hook.cluster_target()) == init_address


def test_non_ray_addresses_are_rejected_with_a_fix(monkeypatch):
    monkeypatch.setenv(_conn_env("flyte_test_ray_http"), json.dumps(
        {"conn_type": "flyte_ray", "host": "http://head:8265"}))
    with pytest.raises(FlyteConfigError, match=r"connection 'flyte_test_ray_http'\.host: not a Ray address.*Fix:"):
        FlyteRayHook(RayJobConfig(worker_node_config=[]), conn_id="flyte_test_ray_http").cluster_target()
    with pytest.raises(FlyteConfigError, match=r"RayJobConfig\.address: not a Ray address"):
        FlyteRayHook(RayJobConfig(worker_node_config=[], address="http://head:8265")).cluster_target()


def test_cluster_runtime_env_merges_user_settings_env_vars_and_the_bundle(tmp_path):
    from airflow_provider_flyte import TaskEnvironment
    from airflow_provider_flyte.bundle import build_bundle

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "mod.py").write_text("")
    (tmp_path / "notes.txt").write_text("")
    bundle = build_bundle(tmp_path)
    user = {"env_vars": {"A": "from-config", "B": "b"}, "pip": ["x"], "excludes": ["*.csv"]}
    env = TaskEnvironment(name="e", env_vars={"A": "from-env", "C": "c"})
    from airflow_provider_flyte.core.task_info import TaskInfo
    from airflow_provider_flyte.operators.base import build_spec

    config = RayJobConfig(worker_node_config=[], runtime_env=user)
    hook = FlyteRayHook(config, build_spec(TaskInfo(), config, env, None))
    merged = hook.cluster_runtime_env(bundle)
    assert merged == {"env_vars": {"A": "from-config", "B": "b", "C": "c"}, "pip": ["x"], "excludes": ["*.csv"],
                      "working_dir": str(bundle.path)}
    assert user == {"env_vars": {"A": "from-config", "B": "b"}, "pip": ["x"], "excludes": ["*.csv"]}, "not changed"
    assert hook.cluster_runtime_env(None) == {"env_vars": {"A": "from-config", "B": "b", "C": "c"}, "pip": ["x"],
                                              "excludes": ["*.csv"]}

    own = FlyteRayHook(RayJobConfig(worker_node_config=[], runtime_env={"working_dir": "/srv/job",
                                                                        "py_modules": ["/srv/lib"]}))
    extracted = tmp_path.parent / "extracted"
    from airflow_provider_flyte.bundle import extract_bundle

    extract_bundle(bundle.path, extracted, expected_digest=bundle.digest)
    merged = own.cluster_runtime_env(bundle, extracted)
    assert merged == {"working_dir": "/srv/job",
                      "py_modules": ["/srv/lib", str(extracted / "mod.py"), str(extracted / "pkg")]}


@pytest.mark.parametrize(
    ("reported", "extra", "link"),
    [
        ("127.0.0.1:8265", {}, "http://127.0.0.1:8265"),
        ("0.0.0.0:8265", {}, "http://head.example:8265"),
        ("127.0.0.1:8265", {"dashboard_url": "https://ray.example/dash"}, "https://ray.example/dash"),
        ("", {}, None),
    ],
)
def test_dashboard_link_from_what_ray_init_reports(reported, extra, link, monkeypatch):
    from types import SimpleNamespace

    monkeypatch.setenv(_conn_env("flyte_test_ray_dash"), json.dumps(
        {"conn_type": "flyte_ray", "host": "ray://head.example", "extra": extra}))
    hook = FlyteRayHook(RayJobConfig(worker_node_config=[]), conn_id="flyte_test_ray_dash")
    hook._record_dashboard(SimpleNamespace(dashboard_url=reported), hook.cluster_target())
    assert hook.links.get("ray_dashboard") == link


# -- SIGTERM to a task on the cluster ----------------------------------------------------------------
def _ray_state(cluster: RayCluster, resource: str, **filters: str) -> list[dict]:
    """Rows of the cluster's state API (``/api/v0/<resource>``), filtered by equality on the head."""
    query = [("limit", "10000"), ("detail", "true")]
    for key, value in filters.items():
        query += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
    request = urllib.request.Request(f"{cluster.dashboard_url}/api/v0/{resource}?{urllib.parse.urlencode(query)}",
                                     headers={"Authorization": f"Bearer {cluster.token}"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return list(json.loads(resp.read())["data"]["result"]["result"])


def test_sigterm_to_a_cluster_task_leaves_no_job_or_worker_on_the_cluster(cluster_conns, ray_cluster, tmp_path):
    """SIGTERM to the task process (Airflow's kill) runs on_kill while the process lives on: the
    cluster must then report the task's job (its Ray Client driver) dead, none of its tasks running
    and the worker that ran its remote task gone. Asked of the cluster's state API, not of the hook."""
    scratch = tmp_path / "kill"
    scratch.mkdir()
    proc = start_dag_process("ray_cluster_kill.py", "ray_cluster_kill", env={"FLYTE_TEST_KILL_DIR": str(scratch)})
    try:
        wait_for(lambda: list(scratch.glob("started-*.json")) or proc.poll() is not None,
                 timeout=150, what="the remote task to run on the cluster")
        assert proc.poll() is None, proc.communicate()[0][-4000:]
        (started,) = [json.loads(p.read_text()) for p in scratch.glob("started-*.json")]
        job_id, pid = started["job_id"], started["pid"]
        job_proc = psutil.Process(pid)
        local = alive(descendants(proc.pid))

        def on_cluster() -> list[str]:
            found = [f"job {job_id}: {j['status']}" for j in _ray_state(ray_cluster, "jobs", job_id=job_id)
                     if j["status"] not in ("SUCCEEDED", "FAILED", "STOPPED")]
            found += [f"{t['type']} {t['func_or_class_name']}: {t['state']}"
                      for t in _ray_state(ray_cluster, "tasks", job_id=job_id) if t["state"] == "RUNNING"]
            found += [f"worker {w['pid']} alive" for w in _ray_state(ray_cluster, "workers", pid=str(pid))
                      if w["is_alive"]]
            return found + [f"process {p.pid} alive" for p in alive([job_proc])]

        # The same checks see the job while it runs (so they can see an orphan).
        seen: list[str] = []

        def sees_everything() -> bool:
            seen[:] = on_cluster()
            return {s.split()[0] for s in seen} >= {"job", "NORMAL_TASK", "worker", "process"}

        try:
            wait_for(sees_everything, timeout=30, what="the state API to show the running job")
        except TimeoutError as exc:
            raise AssertionError(f"{exc}: {seen}") from None

        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            out = ""
        exited = proc.poll() is not None
        # The head fails a finished job's tasks after gcs_mark_task_failed_on_job_done_delay_ms (15 s).
        assert eventually_empty(on_cluster, timeout=45) == [], f"left on the cluster after SIGTERM\n{out[-3000:]}"
        assert exited, "the task process should end once its job was stopped"
        assert alive(local) == [], f"local children of the task left: {alive(local)}"
        assert not (scratch / "finished").exists(), "the remote task ran to its end"
        assert "Task killed: tearing down Ray" in out and "DAGRUN_STATE=failed" in out, out[-3000:]
        assert len(ray_cluster.alive_nodes()) == 2, "the cluster itself keeps running"
    finally:
        (scratch / "stop").touch()
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
