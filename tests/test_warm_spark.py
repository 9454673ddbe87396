"""A warm Spark Connect server through dag.test(): the second task reuses the first one's server with a
session of its own; after the idle TTL (lowered by the test/ops knob) no process of it remains."""

from __future__ import annotations

import psutil

from tests.test_warm_dask import _servers, _wait_gone, warm_dir  # noqa: F401  (fixture)


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
