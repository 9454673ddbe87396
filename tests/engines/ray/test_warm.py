"""A warm Ray head through dag.test(): the second task reuses the first one's server as a job of its own;
after the idle TTL (lowered by the test/ops knob) no process of it remains and its folders are gone."""

from __future__ import annotations

import time

import psutil

from tests.engines.dask.test_warm import _servers, _wait_gone, warm_dir  # noqa: F401  (fixture)


def test_second_task_reuses_the_ray_head_as_a_job_of_its_own(dag_runner, warm_dir, capfd):  # noqa: F811
    result = dag_runner.run("warm_ray.py", "warm_ray")
    assert result.state == "success", result.states
    first, second = result.value("first"), result.value("second")
    assert first["server"] and first["server"] == second["server"]  # same server, same pids
    assert first["gcs"] == second["gcs"] and first["job"] != second["job"]
    assert first["sum"] == second["sum"] == 6
    log = capfd.readouterr().out
    assert log.count("Started warm Ray server") == 1 and log.count("Reusing warm Ray server") == 1
    # the job's worker processes are its own: what task 1 set there is not seen by task 2
    assert second["worker"]["env"] is None and second["worker"]["global"] is None
    assert first["worker"]["pid"] != second["worker"]["pid"]
    pids = first["server"]["pids"]
    assert all(psutil.pid_exists(p) for p in pids)
    folders = _servers(warm_dir)
    assert len(folders) == 1
    dirs = (folders[0] / "dirs.txt").read_text().split()
    started = time.monotonic()
    _wait_gone(warm_dir, pids, timeout=90)
    from airflow_provider_flyte.hygiene.processes import mentioning

    assert not folders[0].exists() and not any(__import__("os").path.exists(d) for d in dirs)
    assert not [p for d in dirs for p in mentioning(d)]
    assert time.monotonic() - started < 90
