"""PyTorch Elastic locally on the worker, through Airflow's dag.test(), with real torch (gloo on CPU)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

from tests.conftest import EXAMPLE_DAGS, REPO, TEST_DAGS
from tests.support.procs import alive, descendants, start_dag_process, wait_for


def _read_attempts(attempt_dir) -> list[dict]:
    sys.path.insert(0, str(TEST_DAGS))
    try:
        from helpers.pytorch_util import read_attempts
    finally:
        sys.path.remove(str(TEST_DAGS))
    return read_attempts(attempt_dir)


def _processes(pids) -> list[psutil.Process]:
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            out.append(psutil.Process(pid))
    return out


def _spawned_workers() -> list[psutil.Process]:
    """Live multiprocessing-spawn children of this test process (elastic workers look like that)."""
    return [p for p in alive(descendants(os.getpid())) if "spawn_main" in " ".join(p.cmdline())]


# -- success paths ----------------------------------------------------------------------------------
_DEFAULTED = ("OMP_NUM_THREADS", "PYTHONUNBUFFERED", "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC",
              "TORCH_NCCL_ENABLE_MONITORING", "FLYTE_NCCL_COLLECTIVE_TIMEOUT_SEC", "TORCHELASTIC_SIGNALS_TO_HANDLE",
              "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME")


def test_every_spelling_runs_in_two_gloo_workers_and_returns_rank_0s_value(dag_runner, monkeypatch):
    for key in _DEFAULTED:  # the hook sets these only where unset
        monkeypatch.delenv(key, raising=False)
    result = dag_runner.run("pytorch_features_dag.py", "pytorch_features")
    assert set(result.states.values()) == {"success"}, result.states

    value = result.value("allreduce")
    assert value["rank"] == 0
    assert value["sum"] == (0 + 1 + 10) + (1 + 1 + 10)
    assert value["world_size"] == 2
    assert value["helper"] == "helpers.pytorch_util"  # the DAG folder is importable in workers
    assert value["omp"] == ["1", "1"]
    assert value["unbuffered"] == "1"
    assert value["heartbeat"] == "300"
    assert value["monitoring"] == "1"
    assert value["collective_timeout_s"] == 42.0
    assert value["socket_ifnames"] == ["lo", "lo"]  # gloo and NCCL's bootstrap stay on loopback
    assert value["task_id"] == "allreduce"
    assert len(set(value["pids"])) == 2 and os.getpid() not in value["pids"]

    assert result.value("via_flyte_task") == "rank0-of-2"
    assert result.value("via_task_flyte") == "w0+w1"
    classic = result.value("classic")
    assert classic["rank"] == 0 and classic["values"] == [3.0, 3.0, 3.0]

    # Nothing the succeeded tasks started is still running, and the env defaults were undone.
    assert not alive(_processes(value["pids"] + classic["pids"]))
    assert _spawned_workers() == []
    for key in _DEFAULTED:
        assert key not in os.environ, key


def test_example_dag_trains_with_ddp_and_returns_rank_0s_loss(dag_runner):
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_pytorch.py", "example_flyte_pytorch")
    assert result.state == "success", result.states
    value = result.value("train_model")
    assert value["world_size"] == 2
    assert value["rank"] == 0
    assert value["final_loss"] < value["first_loss"]


# -- failures -----------------------------------------------------------------------------------------
def test_failures_are_reported_per_rank_restarts_are_counted_and_nothing_hangs(dag_runner, tmp_path):
    started = time.monotonic()
    result = dag_runner.run("pytorch_failing_dag.py", "pytorch_failing", run_conf={"attempt_dir": str(tmp_path)})
    elapsed = time.monotonic() - started
    assert result.state == "failed"
    assert result.states[("rank_raises", -1)] == "failed"
    assert result.states[("all_ranks_exit", -1)] == "failed"
    assert result.states[("rank_killed", -1)] == "failed"
    assert result.states[("two_nodes_locally", -1)] == "failed"
    assert elapsed < 240, f"the failing DAG took {elapsed:.0f}s"

    attempts = _read_attempts(tmp_path)
    raised = [a for a in attempts if a["task"] == "rank_raises"]
    # max_restarts=1: the group ran twice (restart counts 0 and 1), each time with both ranks.
    assert sorted((a["restart"], a["rank"]) for a in raised) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    message = (tmp_path / "rank_raises.error").read_text()
    assert message.startswith("PyTorch worker(s) failed:"), message
    assert "rank 1: exitcode=1 (pid " in message
    assert "ValueError: rank 1 refuses to train" in message

    exited = [a for a in attempts if a["task"] == "all_ranks_exit"]
    assert sorted(a["rank"] for a in exited) == [0, 1]
    message = (tmp_path / "all_ranks_exit.error").read_text()
    assert message.startswith("PyTorch worker(s) failed:"), message
    assert "exitcode=7 (pid " in message

    message = (tmp_path / "rank_killed.error").read_text()
    assert message.startswith("PyTorch worker(s) failed:\n  rank 1: exitcode=-9 (pid "), message
    assert "OOM killer" in message

    message = (tmp_path / "two_nodes_locally.error").read_text()
    assert message.startswith("Elastic.nnodes:"), message
    assert "Fix: use nnodes=1" in message

    assert not alive(_processes(a["pid"] for a in attempts))
    assert _spawned_workers() == []


def test_sigterm_to_the_task_process_stops_the_workers(tmp_path):
    proc = start_dag_process("pytorch_slow_dag.py", "pytorch_slow", env={"FLYTE_TEST_READY_DIR": str(tmp_path)})
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout or ()), daemon=True)
    reader.start()  # keep the pipe drained: torch and Airflow log a lot
    workers: list[psutil.Process] = []
    try:
        wait_for(lambda: len(_read_attempts(tmp_path)) == 2, timeout=240, what="both workers to start")
        workers = _processes(a["pid"] for a in _read_attempts(tmp_path))
        seen = alive(descendants(proc.pid))
        spawned = [p for p in seen if "spawn_main" in " ".join(p.cmdline())]
        assert len(alive(workers)) == 2
        assert {p.pid for p in workers} == {p.pid for p in spawned}
        # The rendezvous store, the workers' store and gloo all listen on loopback only.
        tree = {proc.pid} | {p.pid for p in seen}
        listening = [c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN" and c.pid in tree]
        assert listening and set(listening) == {"127.0.0.1"}, listening
        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
    text = "".join(output)
    assert not alive(workers), text[-3000:]
    # Anything else it started (multiprocessing's resource tracker) follows shortly.
    wait_for(lambda: not alive(seen), timeout=30, what="the task process's other children to exit")
    assert "DAGRUN_STATE=failed" in text, text[-3000:]
    assert "stopped by SIGTERM" in text, text[-3000:]


def test_zombie_watchdog_exits_when_all_workers_are_zombies():
    script = textwrap.dedent("""
        import os, time
        from airflow_provider_flyte.hooks import pytorch_worker
        pytorch_worker.start_zombie_watchdog(2, interval=0.2)
        for _ in range(2):
            if os.fork() == 0:
                os._exit(0)          # never reaped: a zombie child, as after a deadlocked agent
        time.sleep(60)
        print("watchdog did not fire")
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "zombies" in done.stderr
    assert time.monotonic() - started < 30


def test_zombie_watchdog_stops_when_asked():
    script = textwrap.dedent("""
        import os, time
        from airflow_provider_flyte.hooks import pytorch_worker
        stop = pytorch_worker.start_zombie_watchdog(1, interval=0.2)
        stop.set()
        time.sleep(0.5)
        if os.fork() == 0:
            os._exit(0)
        time.sleep(1.5)
        print("still alive")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "still alive" in done.stdout, done.stdout + done.stderr


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"nnodes": "3:1", "nproc_per_node": 1}, r'^Elastic\.nnodes: MIN \(3\) is greater than MAX \(1\).*Fix: swap them: nnodes="1:3"'),
        ({"nnodes": 0, "nproc_per_node": 1}, r"^Elastic\.nnodes: the number of nodes must be at least 1"),
        ({"nnodes": "1:2:3", "nproc_per_node": 1}, r'^Elastic\.nnodes: not in "MIN:MAX" format'),
        ({"nnodes": "two", "nproc_per_node": 1}, r"^Elastic\.nnodes: the node counts must be integers"),
        ({"nnodes": 1, "nproc_per_node": 0}, r"^Elastic\.nproc_per_node: must be at least 1"),
        ({"nnodes": 1, "nproc_per_node": 1, "max_restarts": -1}, r"^Elastic\.max_restarts: must be at least 0"),
        ({"nnodes": 1, "nproc_per_node": 1, "monitor_interval": 0}, r"^Elastic\.monitor_interval: must be at least 1"),
        ({"nnodes": 1, "nproc_per_node": 1, "rdzv_backend": "zk"}, r"^Elastic\.rdzv_backend: "),
        ({"nnodes": 1, "nproc_per_node": 1, "rdzv_configs": {"join_timeout": 0}},
         r"^Elastic\.rdzv_configs\['join_timeout'\]: a rendezvous timeout must be a positive"),
    ],
)
def test_bad_elastic_configs_fail_at_construction(kwargs, match):
    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.plugins.pytorch import Elastic

    with pytest.raises(FlyteConfigError, match=match):
        Elastic(**kwargs)


def test_elastic_and_run_policy_match_flyteplugins_defaults():
    import dataclasses

    from airflow_provider_flyte.exceptions import FlyteConfigError
    from airflow_provider_flyte.plugins.pytorch import Elastic, RunPolicy

    e = Elastic(nnodes="1:4", nproc_per_node=8)
    assert (e.min_nodes, e.max_nodes) == (1, 4)
    assert [f.name for f in dataclasses.fields(Elastic)] == [
        "nnodes", "nproc_per_node", "rdzv_backend", "run_policy", "monitor_interval", "max_restarts",
        "rdzv_configs", "nccl_heartbeat_timeout_sec", "nccl_async_error_handling",
        "nccl_collective_timeout_sec", "nccl_enable_monitoring",
    ]
    assert (e.rdzv_backend, e.run_policy, e.monitor_interval, e.max_restarts) == ("c10d", None, 3, 3)
    assert e.rdzv_configs == {"timeout": 900, "join_timeout": 900}
    assert e.rdzv_configs is not Elastic(nnodes=1, nproc_per_node=1).rdzv_configs
    assert (e.nccl_heartbeat_timeout_sec, e.nccl_async_error_handling) == (300, False)
    assert (e.nccl_collective_timeout_sec, e.nccl_enable_monitoring) == (None, True)
    assert dataclasses.asdict(RunPolicy()) == {
        "clean_pod_policy": None, "ttl_seconds_after_finished": None, "active_deadline_seconds": None,
        "backoff_limit": None,
    }
    with pytest.raises(FlyteConfigError, match=r"^RunPolicy\.clean_pod_policy: "):
        RunPolicy(clean_pod_policy="some")
    # A templated field is checked after rendering, by validated().
    templated = Elastic(nnodes="{{ params.nodes }}", nproc_per_node=2)
    templated.nnodes = "3:1"
    with pytest.raises(FlyteConfigError, match=r"^Elastic\.nnodes: MIN \(3\)"):
        templated.validated()


def test_the_launch_leaves_no_listening_socket_in_the_task_process(tmp_path):
    """The agent's TCPStore servers close after each launch (they close only when collected)."""
    script = tmp_path / "two_launches.py"
    script.write_text(
        "import psutil\n"
        "from airflow_provider_flyte import registry\n"
        "from airflow_provider_flyte.plugins.pytorch import Elastic\n"
        "from airflow_provider_flyte.core.task_info import TaskInfo\n"
        "from bench_torch_entry import all_reduce\n"
        "for _ in range(2):\n"
        "    config = Elastic(nnodes=1, nproc_per_node=2, max_restarts=0, monitor_interval=1)\n"
        "    hook = registry.find(Elastic).hook_class()(config, task=TaskInfo(dag_id='d', task_id='t'))\n"
        "    with hook.session():\n"
        "        assert hook.run(all_reduce, (), {}) == 3\n"
        "    ports = [c.laddr.port for c in psutil.Process().net_connections('inet') if c.status == 'LISTEN']\n"
        "    print('LISTENING', ports, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "bench"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert [line for line in out.stdout.splitlines() if line.startswith("LISTENING")] == ["LISTENING []"] * 2
