"""Dask locally on the worker, through Airflow's dag.test(), against a real ``distributed.LocalCluster``."""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from tests.conftest import EXAMPLE_DAGS, TEST_DAGS
from tests.support.procs import alive, descendants, start_dag_process, terminate_group, wait_for


def _hook_tmp_dirs(slug: str) -> set[str]:
    return set(glob.glob(os.path.join(tempfile.gettempdir(), f"flyte-dask-{slug}-*")))


def test_example_dag_bare_client_sees_three_workers(dag_runner):
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_dask.py", "example_flyte_dask")
    assert result.state == "success", result.states
    assert result.value("dask_task") == {"workers": 3, "sum_of_squares": sum(x * x for x in range(100))}


def test_every_spelling_workers_code_and_no_leftover_workers(dag_runner):
    result = dag_runner.run("dask_tasks.py", "dask_tasks")
    states = {task_id: state for (task_id, _), state in result.states.items()}
    assert states == {
        "three_workers": "success", "bag_sum": "success", "via_task_flyte": "success",
        "classic_operator": "success", "fails": "failed", "leak_check": "success",
    }

    three = result.value("three_workers")
    # A bare Client() reached the task's cluster of exactly 3 workers and started none of its own.
    assert three["n_workers"] == 3
    assert three["same_scheduler"] is True
    assert three["own_cluster"] is False
    # Threads and memory come from WorkerGroup.resources (cpu="1", memory="600Mi").
    assert three["nthreads"] == [1, 1, 1]
    assert three["memory_limits"] == [600 * 2**20] * 3
    # A function from the DAG file ran on the workers and imported helpers/dask_util.py there.
    assert three["values"] == [0, 1, 4, 9]
    assert three["task_pid"] not in three["worker_pids"]
    assert three["helper_files"] == [str(TEST_DAGS / "helpers" / "dask_util.py")]
    assert three["sys_path_0"] == [str(TEST_DAGS)]

    assert result.value("bag_sum") == {"n_workers": 2, "total": 90}
    assert result.value("via_task_flyte") == 49
    assert result.value("classic_operator") == 6

    # After post (success and failure alike) no worker process of any Dask task is left running.
    report = result.value("leak_check")
    assert {task_id: r["seen"] for task_id, r in report.items()} == {
        "three_workers": 3, "bag_sum": 2, "via_task_flyte": 1, "classic_operator": 1, "fails": 1,
    }
    assert {task_id: r["alive"] for task_id, r in report.items() if r["alive"]} == {}

    # This process ran those tasks: no open client, dask setting or by-value registration is left behind.
    import cloudpickle
    import dask.config
    from distributed import Client

    assert dask.config.get("scheduler-address", None) is None
    assert dask.config.get("scheduler", None) is None
    assert [c for c in Client._instances if c.status not in ("closed", "closing")] == []
    assert [m for m in cloudpickle.list_registry_pickle_by_value() if m.endswith("_dask_tasks")] == []


def test_sigterm_to_the_task_process_closes_the_cluster(tmp_path):
    ready = tmp_path / "ready.json"
    before = _hook_tmp_dirs("dask-kill-sleeper")
    proc = start_dag_process("dask_kill.py", "dask_kill", env={"FLYTE_TEST_READY_FILE": str(ready)})
    try:
        wait_for(ready.exists, timeout=240, what="the Dask task to start its cluster")
        info = json.loads(ready.read_text())
        workers = [p for p in descendants(proc.pid) if p.pid in info["worker_pids"]]
        assert len(workers) == 2 and len(alive(workers)) == 2, "the task should have started 2 worker processes"
        assert _hook_tmp_dirs("dask-kill-sleeper") - before, "the hook should have made its scratch folder"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        # Gone by the time the task process exits: post stopped them (orphans would linger seconds).
        assert alive(workers) == [], out[-3000:]
        assert _hook_tmp_dirs("dask-kill-sleeper") - before == set()
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)


def test_two_dask_tasks_at_the_same_time_both_succeed(tmp_path):
    env = {"FLYTE_TEST_DIR": str(tmp_path)}
    procs = [start_dag_process("dask_concurrent.py", f"dask_concurrent_{name}", env=env) for name in "ab"]
    outs = []
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=420)
            outs.append(out)
    finally:
        for proc in procs:
            if proc.poll() is None:
                terminate_group(proc, signal.SIGKILL, timeout=30)
    for out in outs:
        assert "DAGRUN_STATE=success" in out, out[-3000:]
    a, b = (json.loads((tmp_path / f"{name}.json").read_text()) for name in "ab")
    assert a["address"] != b["address"]
    assert (a["other_address"], b["other_address"]) == (b["address"], a["address"])
    assert a["workers"] == b["workers"] == 2
    assert a["total"] == b["total"] == 55


def test_too_few_workers_is_a_clear_error():
    with pytest.raises(FlyteConfigError, match=r"^WorkerGroup\.number_of_workers: must be at least 1 .*\(got -1\)\. Fix: use 1 or more"):
        WorkerGroup(number_of_workers=-1)
    with pytest.raises(FlyteConfigError, match=r"WorkerGroup\.number_of_workers"):
        Dask(workers=WorkerGroup(number_of_workers=-3))
    # A templated count is checked once rendered.
    templated = Dask(workers=WorkerGroup(number_of_workers="{{ params.n }}"))
    templated.workers.number_of_workers = "-2"
    with pytest.raises(FlyteConfigError, match=r"WorkerGroup\.number_of_workers: must be at least 1 .*\(got -2\)\. Fix: "):
        templated.validated()


def test_negative_number_of_workers_is_a_dag_import_error(tmp_path):
    from airflow.dag_processing.dagbag import BundleDagBag

    dag_file = tmp_path / "dask_bad.py"
    dag_file.write_text(textwrap.dedent("""
        from airflow_provider_flyte import TaskEnvironment
        from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
        env = TaskEnvironment(name="bad", plugin_config=Dask(workers=WorkerGroup(number_of_workers=-1)))
    """))
    bag = BundleDagBag(dag_folder=str(dag_file), bundle_path=tmp_path)
    (message,) = bag.import_errors.values()
    assert "WorkerGroup.number_of_workers: must be at least 1 (with no worker, submitted work waits forever) (got -1)" in message


def test_cluster_is_sized_from_worker_resources():
    from airflow_provider_flyte.hooks.dask import FlyteDaskHook
    from airflow_provider_flyte.resources import Resources

    hook = FlyteDaskHook(Dask(workers=WorkerGroup(number_of_workers=None, resources=Resources(
        cpu="1500m", memory=("1Gi", "2Gi")))))
    kwargs = hook.cluster_kwargs()
    assert kwargs["n_workers"] == 1
    assert kwargs["threads_per_worker"] == 2
    assert kwargs["memory_limit"] == 2 * 2**30
    assert kwargs["host"] == "127.0.0.1" and kwargs["dashboard_address"] is None
    assert kwargs["scheduler_kwargs"] == {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


def test_importing_dask_modules_and_parsing_the_example_loads_no_engine():
    code = textwrap.dedent(f"""
        import sys
        import airflow_provider_flyte.plugins.dask, airflow_provider_flyte.hooks.dask
        import airflow_provider_flyte.operators.dask
        from tests.support.dagrun import DagRunner
        DagRunner().load({str(EXAMPLE_DAGS / "example_flyte_dask.py")!r}, "example_flyte_dask")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
    """)
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(repo), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_worker_killed_for_memory_is_translated_with_dasks_message():
    """A real LocalCluster worker over its memory limit: the task fails naming the cause, KilledWorker attached."""
    import dask.config
    import psutil

    from airflow_provider_flyte.core.spec import TaskSpec
    from airflow_provider_flyte.exceptions import FlyteEngineError
    from airflow_provider_flyte.resources import Resources
    from airflow_provider_flyte.runtime.runner import TaskRunner

    def task():
        from distributed import get_client

        def hog():
            import time

            blocks = []
            for _ in range(40):  # 2 GiB at most, against a 256 MiB limit
                blocks.append(bytearray(50 * 2**20))
                time.sleep(0.05)
            return len(blocks)

        return get_client().submit(hog, pure=False).result()

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    config = Dask(workers=WorkerGroup(number_of_workers=1, resources=Resources(memory="256Mi")))
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), pytest.raises(FlyteEngineError) as info:
        TaskRunner(TaskSpec(), config, task).run([], {})
    message = str(info.value)
    assert message.startswith("Dask: a worker was killed, most likely for using more memory than it has. Fix: ")
    assert "The engine's error: KilledWorker: Attempted to run task 'hog-" in message
    assert type(info.value.__cause__).__name__ == "KilledWorker"
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not [p.cmdline() for p in left if "resource_tracker" not in " ".join(p.cmdline())], "no worker is left"


CLOSE_ROUNDS = """
from airflow_provider_flyte import registry
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.core.task_info import TaskInfo
for _ in range(8):
    hook = registry.find(Dask).hook_class()(Dask(workers=WorkerGroup(number_of_workers=3)),
                                            task=TaskInfo(dag_id="d", task_id="t"))
    with hook.session() as data:
        assert data["dask_client"].submit(sum, [1, 2]).result() == 3
print("ROUNDS DONE")
"""


def test_closing_a_local_cluster_logs_no_traceback():
    """The close makes distributed log "Batched Comm Closed" at INFO with a CommClosedError attached
    (about one close in three on this machine): the line stays, the traceback goes."""
    out = subprocess.run([sys.executable, "-c", CLOSE_ROUNDS], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and "ROUNDS DONE" in out.stdout, out.stderr[-3000:]
    logged = out.stdout + out.stderr
    assert "Traceback" not in logged and "CommClosedError" not in logged, logged[-5000:]


HEARTBEAT_ROUND = """
from airflow_provider_flyte import registry
from airflow_provider_flyte.plugins.dask import Dask, WorkerGroup
from airflow_provider_flyte.core.task_info import TaskInfo


def heartbeat_lost_in_a_worker():
    import logging, os
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append((record.levelname, record.exc_info is not None, record.getMessage()))

    logger = logging.getLogger("distributed.worker")
    keep = Keep()
    logger.addHandler(keep)
    try:
        try:
            raise OSError("Timed out trying to connect to tcp://127.0.0.1:1 after 30 s")
        except OSError:
            logger.exception("Failed to communicate with scheduler during heartbeat.")
        logger.error("another worker error")
    finally:
        logger.removeHandler(keep)
    return os.getpid(), seen


hook = registry.find(Dask).hook_class()(Dask(workers=WorkerGroup(number_of_workers=1)),
                                        task=TaskInfo(dag_id="d", task_id="t"))
with hook.session() as data:
    import os
    (pid, seen), = data["dask_client"].run(heartbeat_lost_in_a_worker).values()
    assert pid != os.getpid(), "ran in the worker process"
    print("SEEN", seen)
"""


def test_a_local_worker_logs_a_heartbeat_to_the_closing_scheduler_as_a_warning_without_traceback():
    """The worker process of a local cluster preloads the provider's filter: the race in the close
    (a heartbeat in flight while the scheduler goes) is a WARNING with the exception's text; other
    worker errors keep their level."""
    out = subprocess.run([sys.executable, "-c", HEARTBEAT_ROUND], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "SEEN" in out.stdout, out.stderr[-3000:]
    seen = out.stdout.split("SEEN", 1)[1]
    assert ("('WARNING', False, 'Failed to communicate with scheduler during heartbeat. (OSError: Timed out "
            "trying to connect to tcp://127.0.0.1:1 after 30 s; the local cluster is closing)')") in seen, seen
    assert "('ERROR', False, 'another worker error')" in seen, seen
