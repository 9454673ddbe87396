"""A warm Spark Connect server through dag.test(): the second task reuses the first one's server with a
session of its own; after the idle TTL (lowered by the test/ops knob) no process of it remains."""

from __future__ import annotations

import contextlib
import json
import os

import psutil

from tests.engines.dask.test_warm import _servers, _wait_gone, warm_dir  # noqa: F401  (fixture)
from tests.support.standalone import LOOPBACK


def test_second_task_reuses_the_connect_server_with_a_session_of_its_own(dag_runner, warm_dir, capfd):  # noqa: F811
    result = dag_runner.run("warm_spark.py", "warm_spark")
    assert result.state == "success", result.states
    first, second = result.value("first"), result.value("second")
    assert first["server"] and first["server"] == second["server"]
    assert first["session"] != second["session"]
    assert first["sum"] == second["sum"] == 6
    log = capfd.readouterr().out
    assert log.count("Started warm Spark server") == 1 and log.count("Reusing warm Spark server") == 1
    # per-session conf: task 1's change does not reach task 2; server-side UDF workers are fresh
    assert first["partitions"] == second["partitions"] == "3"
    # a start-time property went to the server (not refused by each task's session with a warning)
    assert first["kryo_max"] == second["kryo_max"] == "96m"
    assert "Spark Connect does not let a session set these properties" not in log
    assert second["worker"] == {"env": None, "global": None}
    pids = first["server"]["pids"]
    assert all(psutil.pid_exists(p) for p in pids)
    (folder,) = _servers(warm_dir)
    _wait_gone(warm_dir, pids, timeout=90)
    assert not folder.exists()


def _listening(pids: list[int]) -> set[str]:
    """The addresses the server's processes (and their children) listen on."""
    found = set()
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(pid)
            for proc in [parent, *parent.children(recursive=True)]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    found |= {c.laddr.ip for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    return found


def _server_pids(warm_dir) -> tuple[str, list[int]]:  # noqa: F811
    (folder,) = _servers(warm_dir)
    record = json.loads((folder / "server.json").read_text())
    return record["address"], [int(p["pid"]) for p in record["pids"]]


def test_a_binding_address_from_the_trigger_form_fails_the_task_before_any_server_starts(dag_runner, warm_dir,  # noqa: F811
                                                                                           capfd):
    """Parse cannot see the keys of a whole-field template; the rendered config is checked before the engine starts."""
    bad = {"spark.master": "local[1]", "spark.driver.memory": "512m", "spark.connect.grpc.binding.address": "0.0.0.0"}
    result = dag_runner.run("warm_spark_templated.py", "warm_spark_templated", run_conf={"spark_conf": bad})
    assert result.states == {("count", -1): "failed"}
    log = capfd.readouterr().out
    assert ("Spark.spark_conf['spark.connect.grpc.binding.address']: a warm Spark server sets this itself" in log
            and "(got '0.0.0.0')" in log)
    assert _servers(warm_dir) == []
    # the same DAG with the trigger form's default runs on a warm server that listens on loopback only
    result = dag_runner.run("warm_spark_templated.py", "warm_spark_templated")
    assert result.state == "success", result.states
    assert result.value("count")["count"] == 5
    address, pids = _server_pids(warm_dir)
    assert address.endswith(f":{result.value('count')['port']}")
    listening = _listening(pids)
    assert listening and listening <= LOOPBACK, listening


def test_the_server_keeps_its_own_binding_whatever_its_params_say(warm_dir):  # noqa: F811
    """Below the hook: params that would move the server (the hook drops them) are overridden by the server."""
    from airflow_provider_flyte import ReusePolicy
    from airflow_provider_flyte.hooks.spark.warm import SERVER_MODULE
    from airflow_provider_flyte.warm import pool

    conf = {"spark.master": "local[1]", "spark.driver.memory": "512m",
            "spark.connect.grpc.binding.address": "0.0.0.0", "spark.local.dir": str(warm_dir.parent / "elsewhere")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    lease = pool.acquire("Spark", "binding", ReusePolicy(replicas=1, idle_ttl=30).to_dict(), server_module=SERVER_MODULE,
                         params={"conf": conf}, env=env)
    try:
        _, pids = _server_pids(warm_dir)
        listening = _listening(pids)
        assert listening and listening <= LOOPBACK, listening
        assert not (warm_dir.parent / "elsewhere").exists()
    finally:
        lease.release()


def test_a_start_only_setting_chooses_the_server(dag_runner, warm_dir, capfd):  # noqa: F811
    """spark.executor.memory is read when the server starts: tasks that differ in it never share a server."""
    result = dag_runner.run("leftovers_warm_spark.py", "leftovers_warm_spark")
    assert result.state == "success", result.states
    first, second = result.value("with_1g"), result.value("with_2g")
    assert (first["executor_memory"], second["executor_memory"]) == ("1g", "2g")
    assert first["endpoint"] != second["endpoint"]
    log = capfd.readouterr().out
    assert log.count("Started warm Spark server") == 2 and "Reusing warm Spark server" not in log
