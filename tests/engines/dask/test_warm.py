"""Warm Dask servers through dag.test() with real ``dask scheduler``/``dask worker`` processes.

The idle TTL is lowered to a few seconds with the test/ops knob ``AIRFLOW__FLYTE__WARM_TTL_OVERRIDE_S``
(the ReusePolicy keeps Flyte's 30 s minimum); the state folder is private to the test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import TEST_DAGS

TTL_S = 15


@pytest.fixture
def warm_dir(tmp_path, monkeypatch):
    folder = tmp_path / "warm"
    monkeypatch.setenv("AIRFLOW__FLYTE__WARM_DIR", str(folder))
    monkeypatch.setenv("AIRFLOW__FLYTE__WARM_TTL_OVERRIDE_S", str(TTL_S))
    yield folder
    _stop_all(folder)


def _stop_all(folder: Path) -> None:
    from airflow_provider_flyte.warm.supervisor import stop_server

    if folder.exists():
        for server in folder.iterdir():
            if server.is_dir():
                stop_server(server)


def _servers(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.exists() else []


def _wait_gone(folder: Path, pids: list[int], timeout: float = TTL_S + 30) -> None:
    """No server folder, none of ``pids`` and no process naming the state folder (supervisors included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _servers(folder) and not [p for p in pids if psutil.pid_exists(p)] and not _mentioning(folder):
            return
        time.sleep(0.5)
    raise AssertionError(f"still there: {_servers(folder)}, pids {[p for p in pids if psutil.pid_exists(p)]}, "
                         f"processes {_describe(_mentioning(folder))}")


def _describe(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())}")
    return out


def _mentioning(folder: Path) -> list[int]:
    from airflow_provider_flyte.hygiene.processes import mentioning

    return [p.pid for p in mentioning(str(folder))]


def test_second_task_reuses_the_server_isolated_and_another_fingerprint_gets_its_own(dag_runner, warm_dir, capfd):

    result = dag_runner.run("warm_dask.py", "warm_dask")
    assert result.state == "success", result.states
    first, second, other = (result.value(t) for t in ("first", "second", "other"))
    # one server for first and second: same scheduler address and pid
    assert first["address"] == second["address"] and first["scheduler_pid"] == second["scheduler_pid"]
    assert first["sum"] == second["sum"] == 6
    log = capfd.readouterr().out
    assert "Started warm Dask server" in log and "Reusing warm Dask server" in log
    assert log.count("Started warm Dask server") == 2
    # nothing one task set on the server is seen by the next: an env var and a module global on the worker
    assert first["worker"]["env"] is None and second["worker"]["env"] is None
    assert first["worker"]["global"] is None and second["worker"]["global"] is None
    # (the task process's own os.environ is not the server's: dag.test() runs every task in one process,
    # with or without reuse, and Airflow's worker runs each task in a fresh one)
    assert first["worker"]["pid"] != second["worker"]["pid"]  # fresh worker process
    # a different fingerprint (2 workers) gets its own server
    assert other["address"] != first["address"] and other["workers"] == 2
    scheduler_pids = [first["scheduler_pid"], other["scheduler_pid"]]
    assert all(psutil.pid_exists(p) for p in scheduler_pids)
    assert len(_servers(warm_dir)) == 2
    # the scheduler's copy of the code bundle is in the server's folder (its TMPDIR), so it goes with the server
    assert [zip_ for server in _servers(warm_dir) for zip_ in server.glob("tmp/flyte-code-bundles/*.zip")]

    # the helper module changes; the next run (scope="global") reuses the server and sees the new code
    helper = TEST_DAGS / "helpers" / "warm_mod.py"
    original = helper.read_text()
    helper.write_text(original.replace("VERSION = 1", "VERSION = 2"))
    try:
        again = dag_runner.run("warm_dask.py", "warm_dask")
    finally:
        helper.write_text(original)
    assert again.state == "success", again.states
    assert again.value("first")["scheduler_pid"] == first["scheduler_pid"]
    assert first["worker"]["version"] == 1 and again.value("first")["worker"]["version"] == 2

    # after the idle TTL no process of either server remains, and their folders are gone
    folders = _servers(warm_dir)
    _wait_gone(warm_dir, scheduler_pids)
    assert folders and not any(folder.exists() for folder in folders)


def test_sigkill_of_the_server_mid_task_fails_it_clearly_and_the_next_task_gets_a_fresh_one(
        dag_runner, warm_dir, tmp_path, monkeypatch, capfd):
    marker = tmp_path / "scheduler.pid"
    monkeypatch.setenv("WARM_KILL_MARKER", str(marker))

    def killer() -> None:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(int(marker.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    result = dag_runner.run("warm_dask.py", "warm_dask_killed")
    thread.join(5)
    killed_pid = int(marker.read_text())
    assert result.states[("killed", -1)] == "failed"
    log = capfd.readouterr().out
    assert "FlyteEngineError: The warm Dask server dask-" in log and "died during the task" in log
    assert result.states[("after", -1)] == "success"
    assert result.value("after")["scheduler_pid"] != killed_pid
    assert result.value("after")["sum"] == 6
    _wait_gone(warm_dir, [killed_pid, result.value("after")["scheduler_pid"]])


def test_a_run_scoped_server_ends_with_its_dag_run_and_a_global_one_does_not(dag_runner, warm_dir, monkeypatch):
    monkeypatch.setenv("AIRFLOW__FLYTE__WARM_TTL_OVERRIDE_S", "600")  # only the run's end can stop it in time
    result = dag_runner.run("warm_dask.py", "warm_dask_run_scope")
    assert result.state == "success", result.states
    first, second, other = (result.value(t) for t in ("run_first", "run_second", "global_one"))
    assert first["scheduler_pid"] == second["scheduler_pid"] and first["sum"] == second["sum"] == 6
    assert other["scheduler_pid"] != first["scheduler_pid"]

    from airflow_provider_flyte.warm import state

    def run_server_left() -> bool:
        return psutil.pid_exists(first["scheduler_pid"]) or any(r.run_key for _, r in state.servers(warm_dir))

    deadline = time.monotonic() + 30
    while run_server_left() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not psutil.pid_exists(first["scheduler_pid"]), "the run-scoped scheduler outlived its DAG run"
    left = [(record.run_key, record.engine) for _, record in state.servers(warm_dir)]
    assert left == [(None, "Dask")], left  # the global server stays until its idle_ttl
    assert psutil.pid_exists(other["scheduler_pid"])


def test_the_warm_example_shares_one_server_and_its_dashboard_link_stays_live(dag_runner, warm_dir):
    """The shipped warm example (issue 27): four mapped tasks on one warm Dask server, and the extra link
    each task recorded opens the scheduler's real dashboard after the tasks ended (not bokeh's "install me")."""
    import urllib.request

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    from tests.conftest import EXAMPLE_DAGS

    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_warm_dask.py", "example_flyte_warm_dask")
    assert result.state == "success", result.states
    stats = result.mapped_values("partition_stats")
    assert [s["part"] for s in stats] == [0, 1, 2, 3]
    assert result.value("total") == sum(x * x for x in range(4000))
    assert len({s["scheduler"] for s in stats}) == 1 and len(_servers(warm_dir)) == 1  # one warm server
    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="example_flyte_warm_dask", run_id=result.run_id,
                                                  task_id="partition_stats", key="_link_DaskDashboardLink")
        links = {x.map_index: x.value for x in rows}
    assert sorted(links) == [0, 1, 2, 3] and set(links.values()) == {stats[0]["dashboard"]}, links
    link = stats[0]["dashboard"]
    assert link.startswith("http://127.0.0.1:"), link
    with urllib.request.urlopen(link, timeout=30) as resp:  # the run is over; the server is still warm
        page = resp.read().decode()
    assert resp.status == 200 and "Dask needs bokeh" not in page and "bokeh" in page.lower(), page[:500]
