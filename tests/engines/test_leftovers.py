"""Nothing a task started outlives it (issue 21, "left behind"), through dag.test() with real engines.

One run of ``leftovers_dag.py`` checks three leftovers: a child process the user's function started and
did not wait for (engine-less and Dask tasks), the bundle cache folder of a process that was SIGKILLed
(swept by the next task's scratch folder), and the ``pytorch-errorfile-*.pickle`` torch's spawn leaves
in the temp dir for each worker that raised.
"""

from __future__ import annotations

import contextlib
import multiprocessing.util
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

import psutil

from tests.support.procs import alive


def _bundle_cache_of_a_sigkilled_process(project: Path, temp_dir: Path) -> Path:
    """A real process builds a code bundle (its cache folder is made) and is SIGKILLed: no atexit runs."""
    project.mkdir()
    (project / "job.py").write_text("X = 1\n")
    script = textwrap.dedent(f"""
        import os, signal
        from airflow_provider_flyte.bundle.build import build_bundle
        print(build_bundle({str(project)!r}).path.parent, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TMPDIR": str(temp_dir)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.is_dir() and folder.name.startswith("flyte-bundles-"), folder
    return folder


def _torch_error_files(marker: str) -> list[Path]:
    """``pytorch-errorfile-*.pickle`` files in the temp dir holding a traceback with ``marker``."""
    found = []
    for path in Path(tempfile.gettempdir()).glob("pytorch-errorfile-*.pickle"):
        with contextlib.suppress(OSError):
            if marker.encode() in path.read_bytes():
                found.append(path)
    return found


def _sleepers(pids: list[int]) -> list[psutil.Process]:
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            if proc.cmdline()[:1] == ["sleep"]:
                procs.append(proc)
    return alive(procs)


def test_a_task_leaves_no_child_no_dead_bundle_cache_and_no_torch_error_file(dag_runner, tmp_path, capfd,
                                                                               monkeypatch):
    from airflow_provider_flyte.bundle.cache import cache_dir

    marker = f"leftovers-{uuid.uuid4().hex}"
    # This process already has its bundle cache (its first bundle build swept once, as a long-lived
    # process does): what removes the dead process's folder now is the next task's own sweep.
    cache_dir()
    multiprocessing.util.get_temp_dir()  # made in the real temp dir: it lives as long as this process
    # A temp dir of this test's own (the task runs in this process): no other test's sweep reaches it.
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private_tmp))
    dead_cache = _bundle_cache_of_a_sigkilled_process(tmp_path / "project", private_tmp)
    result = dag_runner.run("leftovers_dag.py", "leftovers", run_conf={"marker": marker})
    pids = [result.xcoms.get(("spawns_a_child", -1)), result.xcoms.get(("dask_spawns_a_child", -1))]
    left = _sleepers([p for p in pids if p])
    error_files = _torch_error_files(marker)
    try:
        assert result.states == {("spawns_a_child", -1): "success", ("dask_spawns_a_child", -1): "success",
                                 ("elastic_raises", -1): "failed"}, result.states
        log = capfd.readouterr().out
        assert not left, f"still running after their tasks: {[p.pid for p in left]}"
        for pid in pids:
            assert f"pid {pid} (sleep 300)" in log, log[-3000:]
        assert "The task left 1 process(es) running" in log
        assert not dead_cache.exists(), "the SIGKILLed process's bundle cache should be swept by the next task"
        assert not error_files, f"torch's traceback files were left: {error_files}"
    finally:
        for proc in left:
            proc.kill()
        for path in error_files:
            path.unlink(missing_ok=True)
        if dead_cache.exists():
            import shutil

            shutil.rmtree(dead_cache, ignore_errors=True)


def test_processes_of_this_session_are_stopped_and_detached_ones_are_kept():
    """Below the runner: which new descendants count as the task's leftovers."""
    from airflow_provider_flyte.hygiene.processes import descendant_pids, stop_left_running

    before = descendant_pids()
    mine = subprocess.Popen(["sleep", "300"])
    detached = subprocess.Popen(["sleep", "300"], start_new_session=True)  # e.g. a warm server's supervisor
    procs = [psutil.Process(mine.pid), psutil.Process(detached.pid)]
    try:
        assert stop_left_running(before) == []  # nothing survived the stop
        assert alive(procs) == [procs[1]]
    finally:
        for proc in (mine, detached):
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
