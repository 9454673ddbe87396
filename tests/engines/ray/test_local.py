"""Ray locally on the worker, through Airflow's dag.test(), against a real local Ray."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_flyte import Resources, TaskEnvironment
from airflow_provider_flyte.core.task_info import TaskInfo
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.hooks.ray import FlyteRayHook
from airflow_provider_flyte.plugins.ray import (
    AutoscalerOptionsConfig,
    HeadNodeConfig,
    RayJobConfig,
    WorkerNodeConfig,
)
from tests.conftest import EXAMPLE_DAGS, REPO, TEST_DAGS
from tests.support.procs import (
    alive,
    descendants,
    processes_matching,
    start_dag_process,
    terminate_group,
    wait_for,
)

MACHINE_CPUS = len(os.sched_getaffinity(0))


def _is_multiprocessing_helper(proc: Any) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except Exception:
        return False
    return "multiprocessing.resource_tracker" in cmdline or "multiprocessing.forkserver" in cmdline


def _gone(probe: dict[str, Any], extra_pids: list[int] = ()) -> None:
    """Every process of the probed Ray instance has exited and its temp dir is removed."""
    import psutil

    procs = []
    for pid in [*probe["pids"], *extra_pids]:
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        # Same PID but started after the probe: a new process that reused the number.
        if proc.create_time() <= probe["probed_at"]:
            procs.append(proc)
    # Python's own multiprocessing helpers (started lazily by whichever library spawns first,
    # and shared by the whole test process) are not part of the Ray instance.
    leftover = [p for p in alive(procs) if not _is_multiprocessing_helper(p)]
    assert leftover == [], [(p.pid, p.cmdline()) for p in leftover]
    assert probe["temp_dir"] and probe["temp_dir"].startswith("/tmp/flyte-ray-")
    assert not os.path.exists(probe["temp_dir"])
    assert processes_matching(probe["temp_dir"]) == []


def _read_probe(folder: Path, name: str) -> dict[str, Any]:
    path = folder / f"{name}.json"
    probe = json.loads(path.read_text())
    probe["probed_at"] = path.stat().st_mtime + 1
    baseline = folder / "baseline.json"
    if baseline.exists():
        before = set(json.loads(baseline.read_text()))
        probe["pids"] = [pid for pid in probe["pids"] if pid not in before]
    assert probe["pids"], f"{name}: the task saw no Ray processes"
    return probe


# -- the example DAG ----------------------------------------------------------------------------
def test_example_dag_squares_with_ray(dag_runner):
    result = dag_runner.run(EXAMPLE_DAGS / "example_flyte_ray.py", "example_flyte_ray")
    assert result.state == "success", result.states
    assert result.value("ray_task") == [0, 1, 4]


# -- one DAG: every spelling, a DAG-folder helper on workers, a failing task ----------------------
@pytest.fixture(scope="module")
def ray_tasks(dag_runner, tmp_path_factory):
    import psutil

    folder = tmp_path_factory.mktemp("ray-probes")
    # children of this test process from before the run (another fixture's servers) are not the tasks'
    (folder / "baseline.json").write_text(json.dumps([p.pid for p in psutil.Process().children(recursive=True)]))
    os.environ["FLYTE_RAY_TEST_DIR"] = str(folder)
    try:
        result = dag_runner.run("ray_tasks.py", "ray_tasks")
    finally:
        del os.environ["FLYTE_RAY_TEST_DIR"]
    return result, folder


def test_flyte_task_env_task_and_task_flyte_all_run_with_ray(ray_tasks):
    result, _ = ray_tasks
    assert result.states[("via_flyte_task", -1)] == "success"
    assert result.states[("via_env_task", -1)] == "success"
    assert result.states[("via_task_flyte", -1)] == "success"
    # A function from the DAG file (pickled by value) calling a DAG-folder helper in the workers.
    assert result.value("via_env_task") == [1000, 1001, 1004]
    assert result.value("via_task_flyte") == 1002


def test_ray_worker_imports_a_helper_module_from_the_dag_folder(ray_tasks):
    result, _ = ray_tasks
    out = result.value("via_flyte_task")
    assert out["value"] == 1001
    assert out["pid"] != out["task_pid"], "the remote function must run in a Ray worker process"
    assert Path(out["file"]) == TEST_DAGS / "helpers" / "ray_util.py"
    assert out["env"] == "from-runtime-env", "the config's runtime_env must reach the workers"


def test_local_instance_has_the_configured_cpus(ray_tasks):
    _, folder = ray_tasks
    # head 1 CPU + 1 worker x 1 CPU, capped to this machine (never below one node's CPUs).
    assert _read_probe(folder, "via_flyte_task")["num_cpus"] == min(2, max(MACHINE_CPUS, 1))
    # replicas="{{ params.workers }}" rendered to 0: the head's 1 CPU only.
    assert _read_probe(folder, "via_task_flyte")["num_cpus"] == 1


def test_no_ray_process_or_temp_dir_remains_after_succeeded_and_failed_tasks(ray_tasks):
    import ray

    result, folder = ray_tasks
    assert result.state == "failed"
    assert result.states[("fails", -1)] == "failed"
    assert not ray.is_initialized()
    temp_dirs = set()
    for name in ("via_flyte_task", "via_env_task", "via_task_flyte", "fails"):
        probe = _read_probe(folder, name)
        assert probe["task_pid"] == os.getpid()  # dag.test ran the task in this process
        _gone(probe)
        temp_dirs.add(probe["temp_dir"])
    assert len(temp_dirs) == 4, "every task gets its own Ray instance"


# -- killed, and concurrent: tasks in child processes ----------------------------------------------
def test_sigterm_to_the_task_process_leaves_no_ray_process_or_temp_dir(tmp_path):
    proc = start_dag_process("ray_process_dags.py", "ray_sleeping", env={"FLYTE_RAY_TEST_DIR": str(tmp_path)})
    try:
        wait_for(lambda: (tmp_path / "sleeping.json").exists() or proc.poll() is not None,
                 timeout=240, what="the Ray task to start")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        probe = _read_probe(tmp_path, "sleeping")
        assert probe["task_pid"] == proc.pid
        started = descendants(proc.pid)
        assert any(p.name() == "raylet" for p in started)
        proc.send_signal(signal.SIGTERM)  # to the task process only, as Airflow's supervisor does
        # Airflow's SIGTERM handler runs on_kill (the hook's post); Ray processes and temp dir go.
        wait_for(lambda: not alive(started) and not os.path.exists(probe["temp_dir"]),
                 timeout=60, what="the Ray processes to stop after SIGTERM")
        # ray.get is unwound (KeyboardInterrupt), then Ray is torn down; the run ends as failed, without hanging.
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            output = terminate_group(proc, signal.SIGKILL, timeout=30)
    assert "Task killed: tearing down Ray" in output
    assert "DAGRUN_STATE=failed" in output, f"exit code {proc.returncode}\n{output[-3000:]}"
    assert "TaskKilledError" in output, output[-3000:]  # unwound first (kill_unwinds_first), then torn down
    _gone(probe, [p.pid for p in started])


def test_a_killed_function_that_swallows_the_interrupt_still_gets_ray_torn_down_and_fails(tmp_path):
    proc = start_dag_process("ray_process_dags.py", "ray_swallows_kill", env={"FLYTE_RAY_TEST_DIR": str(tmp_path)})
    try:
        wait_for(lambda: (tmp_path / "swallowing.json").exists() or proc.poll() is not None,
                 timeout=240, what="the Ray task to start")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        probe = _read_probe(tmp_path, "swallowing")
        started = descendants(proc.pid)
        assert any(p.name() == "raylet" for p in started)
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # KeyboardInterrupt is swallowed: the watchdog tears Ray down KILL_UNWIND_GRACE_S (5 s) later.
        wait_for(lambda: not alive(started) and not os.path.exists(probe["temp_dir"]),
                 timeout=60, what="the Ray processes to stop after SIGTERM")
        assert time.monotonic() - killed_at >= 4.5, "torn down before the grace period: the unwind was not waited for"
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            output = terminate_group(proc, signal.SIGKILL, timeout=30)
    assert "Ray did not unwind 5 s after the kill: tearing it down under it" in output, output[-3000:]
    # the function then returned (Ray gone), and the task still fails as killed rather than succeeding
    assert "TaskKilledError" in output and "DAGRUN_STATE=failed" in output, output[-3000:]
    _gone(probe, [p.pid for p in started])


def _private_airflow_home(base: Path) -> dict[str, str]:
    """A copy of the test metadata DB, so that two dag.test() processes do not share one SQLite file."""
    home = base / "airflow-home"
    home.mkdir()
    source = sqlite3.connect(Path(os.environ["AIRFLOW_HOME"]) / "airflow.db")
    target = sqlite3.connect(home / "airflow.db")
    with target:
        source.backup(target)
    source.close()
    target.close()
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"}


def test_two_ray_tasks_at_the_same_time_on_one_machine_both_succeed(tmp_path):
    sync = tmp_path / "sync"
    sync.mkdir()
    procs = {}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        env = {**_private_airflow_home(tmp_path / name), "FLYTE_RAY_TEST_DIR": str(sync)}
        procs[name] = start_dag_process("ray_process_dags.py", f"ray_concurrent_{name}", env=env)
    outputs = {}
    try:
        for name, proc in procs.items():
            outputs[name], _ = proc.communicate(timeout=420)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                terminate_group(proc, signal.SIGKILL, timeout=30)
    for name in procs:
        assert "DAGRUN_STATE=success" in outputs[name], outputs[name][-4000:]
    probes = [_read_probe(sync, f"concurrent_{name}") for name in procs]
    assert probes[0]["temp_dir"] != probes[1]["temp_dir"]
    for probe in probes:
        _gone(probe)


# -- Ray already initialized: used, not shut down -----------------------------------------------------
def test_a_task_uses_ray_initialized_before_it_and_leaves_it_running():
    import ray

    config = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)])
    outer = FlyteRayHook(config, task=TaskInfo(dag_id="reuse", task_id="outer"))
    with outer.session():
        temp_dir = ray._private.worker._global_node.get_temp_dir_path()
        listening = _listening_addresses(temp_dir)
        assert listening, "Ray's servers should be listening"
        assert {ip for ip, _ in listening} <= {"127.0.0.1", "::ffff:127.0.0.1"}, listening
        # Ray's fixed default ports are not used: another task's instance may hold them.
        assert not {port for _, port in listening} & {52365, 44217, 44227, 8265, 6379}, listening
        inner = FlyteRayHook(config, task=TaskInfo(dag_id="reuse", task_id="inner"))
        with inner.session():
            assert ray.get(ray.remote(lambda: 7).remote()) == 7
        assert ray.is_initialized(), "the inner task did not start Ray: it must not shut it down"
        assert ray.get(ray.remote(lambda: 8).remote()) == 8
    assert not ray.is_initialized()
    assert not os.path.exists(temp_dir)


def _listening_addresses(temp_dir: str) -> set[tuple[str, int]]:
    import psutil

    from airflow_provider_flyte.hooks.ray.local import _ray_processes

    found = set()
    for proc in _ray_processes(temp_dir):
        for conn in proc.net_connections("inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.add((conn.laddr.ip, conn.laddr.port))
    return found


def test_functions_from_the_dag_module_are_pickled_by_value_during_the_task(monkeypatch):
    import types

    from ray import cloudpickle

    module = types.ModuleType("unusual_prefix_0123_ray_dag")
    exec("def fn():\n    return 1\n", module.__dict__)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    hook = FlyteRayHook(RayJobConfig(worker_node_config=[]), python_callable=module.fn)
    hook.pickle_by_value(cloudpickle)
    assert cloudpickle.cloudpickle._is_registered_pickle_by_value(module)
    hook.post()
    assert not cloudpickle.cloudpickle._is_registered_pickle_by_value(module)


# -- sizing and ray.init arguments (no Ray started) ------------------------------------------------
def _hook(config: RayJobConfig, env: TaskEnvironment | None = None, root: Path | None = None) -> FlyteRayHook:
    from airflow_provider_flyte.operators.base import build_spec

    return FlyteRayHook(config, build_spec(TaskInfo(project_root=root), config, env, None))


def test_cpus_come_from_head_worker_groups_and_env_resources():
    config = RayJobConfig(
        head_node_config=HeadNodeConfig(requests=Resources(cpu="500m")),
        worker_node_config=[
            WorkerNodeConfig(group_name="small", replicas=2, requests=Resources(cpu="1")),
            WorkerNodeConfig(group_name="params", replicas=1, ray_start_params={"num-cpus": "3"}),
            WorkerNodeConfig(group_name="default", replicas=2),
        ],
    )
    env = TaskEnvironment(name="sized", resources=Resources(cpu="2"))
    hook = _hook(config, env)
    assert hook.node_cpus() == (0.5, [(2, 1.0), (1, 3.0), (2, 2.0)])
    assert hook.requested_cpus() == 0.5 + 2 + 3 + 4
    # 9.5 CPUs asked; capped to the machine, but never below the largest node (3 CPUs).
    assert hook.local_num_cpus() == min(10, max(MACHINE_CPUS, 3))
    seed = RayJobConfig(worker_node_config=[WorkerNodeConfig(group_name="ray-group", replicas=2)])
    assert _hook(seed).requested_cpus() == 3
    assert _hook(seed).local_num_cpus() == min(3, MACHINE_CPUS)


def test_init_arguments_isolate_the_local_instance(tmp_path):
    config = RayJobConfig(
        worker_node_config=[WorkerNodeConfig(group_name="g", replicas=1)],
        runtime_env={"env_vars": {"PYTHONPATH": "/opt/lib", "A": "1"}, "pip": ["x"]},
    )
    kwargs = _hook(config, root=tmp_path).local_init_kwargs("/tmp/flyte-ray-x")
    assert kwargs["address"] == "local"
    assert kwargs["include_dashboard"] is False
    assert kwargs["log_to_driver"] is True
    assert kwargs["_temp_dir"] == "/tmp/flyte-ray-x"
    assert kwargs["runtime_env"] == {"env_vars": {"PYTHONPATH": f"{tmp_path}:/opt/lib", "A": "1"}, "pip": ["x"]}
    assert config.runtime_env["env_vars"]["PYTHONPATH"] == "/opt/lib", "the config itself is not changed"
    asked = RayJobConfig(worker_node_config=[], head_node_config=HeadNodeConfig(
        ray_start_params={"include-dashboard": "true"}))
    assert _hook(asked).local_init_kwargs("/tmp/x")["include_dashboard"] is True


def test_runtime_env_yaml_is_derived():
    config = RayJobConfig(worker_node_config=[], runtime_env={"pip": ["numpy", "pandas"]})
    assert config.runtime_env_yaml == "pip:\n- numpy\n- pandas\n"
    assert RayJobConfig(worker_node_config=[]).runtime_env_yaml is None
    assert "runtime_env_yaml" not in config.to_dict()


# -- bad input ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("build", "field", "words"),
    [
        (lambda: WorkerNodeConfig(group_name="g", replicas=2, min_replicas=3, max_replicas=1),
         "WorkerNodeConfig.min_replicas", "greater than max_replicas"),
        (lambda: WorkerNodeConfig(group_name="g", replicas=-1), "WorkerNodeConfig.replicas", ">= 0"),
        (lambda: WorkerNodeConfig(group_name="g", replicas=5, max_replicas=3),
         "WorkerNodeConfig.replicas", "above max_replicas"),
        (lambda: WorkerNodeConfig(group_name="", replicas=1), "WorkerNodeConfig.group_name", "group name"),
        (lambda: RayJobConfig(worker_node_config=[WorkerNodeConfig("g", 1), WorkerNodeConfig("g", 2)]),
         "RayJobConfig.worker_node_config", "same group_name"),
        (lambda: RayJobConfig(worker_node_config=[], ttl_seconds_after_finished=-5),
         "RayJobConfig.ttl_seconds_after_finished", ">= 0"),
        (lambda: AutoscalerOptionsConfig(upscaling_mode=7), "AutoscalerOptionsConfig.upscaling_mode", "mode"),
        (lambda: RayJobConfig(worker_node_config="g"), "RayJobConfig.worker_node_config", ""),
    ],
)
def test_bad_config_raises_a_clear_error_at_construction(build, field, words):
    with pytest.raises(FlyteConfigError) as info:
        build()
    assert info.value.field == field
    assert words in str(info.value)
    assert "Fix:" in str(info.value)


def test_templated_replicas_are_checked_after_rendering():
    config = RayJobConfig(worker_node_config=[WorkerNodeConfig("g", "{{ params.n }}", max_replicas=2)])
    config.worker_node_config[0].replicas = "3"  # what Airflow's rendering leaves
    with pytest.raises(FlyteConfigError, match=r"WorkerNodeConfig\.replicas.*above max_replicas"):
        config.validated()


def test_importing_the_ray_modules_and_parsing_the_example_does_not_load_ray():
    code = (
        "import sys\n"
        "import airflow_provider_flyte.plugins.ray, airflow_provider_flyte.hooks.ray\n"
        "import airflow_provider_flyte.operators.ray\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        f"bag = BundleDagBag(dag_folder={str(EXAMPLE_DAGS / 'example_flyte_ray.py')!r}, "
        f"bundle_path={str(EXAMPLE_DAGS)!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "assert 'example_flyte_ray' in bag.dags\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
