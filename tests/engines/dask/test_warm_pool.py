"""The warm pool across processes, with real Dask servers: a start race makes one server; a dead
supervisor's server is cleaned up and replaced; the list/stop command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

POLICY = {"replicas": [1, 1], "idle_ttl": 30, "concurrency": 2, "scaledown_ttl": 30, "scope": "global"}
SERVER = "airflow_provider_flyte.warm.servers.dask"

ACQUIRE = textwrap.dedent(f"""
    import json, os, sys, time
    from airflow_provider_flyte.warm import pool
    start_at = float(sys.argv[1])
    while time.time() < start_at:
        time.sleep(0.001)
    lease = pool.acquire("Dask", "race", json.loads(sys.argv[2]), server_module={SERVER!r}, params={{"n_workers": 1}},
                         env=dict(os.environ))
    print(json.dumps({{"name": lease.record.name, "started": lease.started,
                      "supervisor": lease.record.supervisor["pid"]}}), flush=True)
    sys.stdin.read()  # hold the lease until the test closes stdin
    lease.release()
""")


@pytest.fixture
def warm_env(tmp_path):
    env = dict(os.environ, AIRFLOW__FLYTE__WARM_DIR=str(tmp_path / "warm"), AIRFLOW__FLYTE__WARM_TTL_OVERRIDE_S="3")
    yield env
    subprocess.run([sys.executable, "-m", "airflow_provider_flyte.warm", "stop", "--all"], env=env, timeout=120,
                   check=False)


def _acquirers(env, n, policy=POLICY):
    start_at = str(time.time() + 2.0)
    return [subprocess.Popen([sys.executable, "-c", ACQUIRE, start_at, json.dumps(policy)], env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(n)]


def _lease_line(proc) -> dict:
    """The acquirer's JSON line: a log line (the pool logs to stdout, as Airflow configures it) may come first."""
    for line in proc.stdout:
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"the acquirer exited with {proc.wait()} before printing its lease")


def _warm(env, *args):
    return subprocess.run([sys.executable, "-m", "airflow_provider_flyte.warm", *args], env=env, timeout=120,
                          capture_output=True, text=True, check=True).stdout


def test_two_tasks_starting_at_once_make_one_server_and_list_stop_work(warm_env, tmp_path):
    procs = _acquirers(warm_env, 2)
    try:
        seen = [_lease_line(p) for p in procs]
        assert seen[0]["name"] == seen[1]["name"]
        assert sorted(s["started"] for s in seen) == [False, True]
        folders = [p for p in (tmp_path / "warm").iterdir() if p.is_dir()]
        assert [f.name for f in folders] == [seen[0]["name"]]
        listing = _warm(warm_env, "list")
        assert seen[0]["name"] in listing and "ready" in listing and "2 lease(s)" in listing
    finally:
        for p in procs:
            p.communicate("", timeout=60)
    supervisor = seen[0]["supervisor"]
    assert psutil.pid_exists(supervisor)
    out = _warm(warm_env, "stop", seen[0]["name"])
    assert f"stopped {seen[0]['name']}" in out
    assert not psutil.pid_exists(supervisor) or psutil.Process(supervisor).status() == psutil.STATUS_ZOMBIE
    assert not (tmp_path / "warm" / seen[0]["name"]).exists()
    assert _warm(warm_env, "list").strip() == "no warm engines"


def test_a_sigkilled_supervisor_is_detected_and_its_server_replaced(warm_env, tmp_path):
    from airflow_provider_flyte.hygiene.processes import mentioning

    (first,) = _acquirers(warm_env, 1)
    record = _lease_line(first)
    folder = tmp_path / "warm" / record["name"]
    server_pids = [int(p["pid"]) for p in json.loads((folder / "server.json").read_text())["pids"]]
    os.kill(record["supervisor"], signal.SIGKILL)
    first.communicate("", timeout=60)
    (second,) = _acquirers(warm_env, 1)
    fresh = _lease_line(second)
    second.communicate("", timeout=60)
    assert fresh["started"] is True and fresh["name"] != record["name"]
    assert not folder.exists()
    assert not [p for p in server_pids if psutil.pid_exists(p)]
    assert not mentioning(str(folder))


def test_parsing_the_warm_dags_loads_no_engine_and_starts_no_server(tmp_path):
    from tests.conftest import SOURCE_TEST_DAGS
    from tests.e2e.test_package import _PARSE_EXAMPLES, ENGINES, _run

    folder = tmp_path / "dags"
    folder.mkdir()
    for name in ("warm_dask.py", "warm_ray.py", "warm_spark.py"):
        (folder / name).write_text((SOURCE_TEST_DAGS / name).read_text())
    env_dir = tmp_path / "warm"
    os.environ["AIRFLOW__FLYTE__WARM_DIR"] = str(env_dir)
    try:
        result = json.loads(_run(_PARSE_EXAMPLES.format(engines=set(ENGINES)), str(folder)))
    finally:
        del os.environ["AIRFLOW__FLYTE__WARM_DIR"]
    assert {"warm_dask", "warm_ray", "warm_spark"} <= set(result["dags"])
    assert result["engines"] == []
    assert not env_dir.exists() or not [p for p in env_dir.iterdir() if p.is_dir()]


def test_replicas_bound_the_servers_per_fingerprint(warm_env, tmp_path):
    """replicas=(1, 2), concurrency 1: two tasks at once get two servers; a third waits for a free one."""
    policy = dict(POLICY, replicas=[1, 2], concurrency=1)
    procs = _acquirers(warm_env, 2, policy)
    seen = [_lease_line(p) for p in procs]
    assert seen[0]["name"] != seen[1]["name"] and all(s["started"] for s in seen)
    (third,) = _acquirers(warm_env, 1, policy)
    time.sleep(4.0)
    assert len([p for p in (tmp_path / "warm").iterdir() if p.is_dir()]) == 2  # no third server
    procs[0].communicate("", timeout=60)  # frees one server: the waiting task takes it
    got = _lease_line(third)
    third.communicate("", timeout=60)
    procs[1].communicate("", timeout=60)
    assert got["name"] == seen[0]["name"] and got["started"] is False


def test_a_server_that_fails_to_start_is_a_clear_error_and_leaves_nothing(warm_env, tmp_path):
    """A real dask worker refusing its settings: the task gets the reason and the logs; nothing is left."""
    code = textwrap.dedent(f"""
        import os
        from airflow_provider_flyte.warm import pool
        try:
            pool.acquire("Dask", "bad", {POLICY!r}, server_module={SERVER!r},
                         params={{"n_workers": 1, "memory_limit": "plenty"}}, env=dict(os.environ))
        except Exception as exc:
            print(type(exc).__name__, str(exc)[:300].replace("\\n", " "))
    """)
    started = time.time()
    out = subprocess.run([sys.executable, "-c", code], env=warm_env, capture_output=True, text=True, timeout=180)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""  # log lines may come before it
    assert last.startswith("FlyteEngineError The warm Dask server dask-bad"), out.stdout + out.stderr[-2000:]
    assert "failed to start" in last and "Dask workers" in last
    assert not [p for p in (tmp_path / "warm").iterdir() if p.is_dir()]
    from airflow_provider_flyte.hygiene.processes import mentioning

    assert not mentioning(str(tmp_path / "warm"))
    # the scheduler that did start (it renames itself: no folder on its command line) is gone too:
    # no process runs in the server's working directory
    left = []
    for proc in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if proc.create_time() >= started - 1 and proc.cwd().startswith(str(tmp_path / "warm")):
                left.append(proc)
    assert not left, left


def test_an_idle_extra_replica_goes_after_scaledown_ttl_and_the_minimum_stays(warm_env, tmp_path):
    """replicas=(1, 2): once both are idle, one server stops after scaledown_ttl (30 s), one waits for idle_ttl."""
    env = {k: v for k, v in warm_env.items() if k != "AIRFLOW__FLYTE__WARM_TTL_OVERRIDE_S"}
    policy = dict(POLICY, replicas=[1, 2], concurrency=1, idle_ttl=600, scaledown_ttl=30)
    procs = _acquirers(env, 2, policy)
    seen = [_lease_line(p) for p in procs]
    assert seen[0]["name"] != seen[1]["name"]
    for proc in procs:
        proc.communicate("", timeout=60)
    released = time.monotonic()
    servers = tmp_path / "warm"

    def names() -> list[str]:
        return sorted(p.name for p in servers.iterdir() if p.is_dir())

    time.sleep(20)
    assert len(names()) == 2  # both still there well before scaledown_ttl
    while len(names()) == 2 and time.monotonic() - released < 90:
        time.sleep(0.5)
    assert len(names()) == 1, names()
    gone = next(s for s in seen if s["name"] not in names())
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(gone["supervisor"]).wait(timeout=15)  # its supervisor exits after removing the folder
    time.sleep(5)
    assert len(names()) == 1  # the minimum replica stays until idle_ttl
