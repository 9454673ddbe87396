"""Scratch folders of SIGKILLed tasks are swept by the next task of the same engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from airflow_provider_flyte.hygiene.scratch import (
    OWNER_FILE,
    SCRATCH_ENV,
    make_scratch_dir,
    new_owned_dir,
    reap_stale_scratch_dirs,
    remove_scratch_dir,
)
from tests.support.procs import alive, descendants, start_dag_process, terminate_group, wait_for


def _made_by_a_killed_process(kind: str, parent: str) -> str:
    """A scratch folder whose owner, a real process, died by SIGKILL right after making it."""
    script = textwrap.dedent(f"""
        import os, signal
        from airflow_provider_flyte.hygiene.scratch import new_owned_dir
        print(new_owned_dir({kind!r}, {parent!r}), flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    path = done.stdout.strip()
    assert os.path.isdir(path) and os.path.exists(os.path.join(path, OWNER_FILE))
    return path


def test_folders_of_dead_owners_are_removed_with_the_processes_still_using_them(tmp_path):
    parent = str(tmp_path)
    named = _made_by_a_killed_process("eng", parent)
    mine = new_owned_dir("eng", parent)  # owner alive: this process
    # Processes that outlived the owner and still use its folder are its leftovers.
    user = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", named])
    # The holder learns the path from a variable the sweep does not read: only its open file can give it away.
    holder = subprocess.Popen([sys.executable, "-c", "import os, time; f = open(os.environ['HELD'], 'w'); time.sleep(60)"],
                              env={**os.environ, "HELD": os.path.join(named, "held.log")})
    tagged = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env={**os.environ, SCRATCH_ENV: named})
    wait_for(lambda: os.path.exists(os.path.join(named, "held.log")), timeout=30, what="the file to be opened")
    try:
        orphan = _made_by_a_killed_process("eng", parent)
        other_kind = _made_by_a_killed_process("other", parent)
        unmarked = tmp_path / "flyte-eng-not-ours"
        unmarked.mkdir()
        reused_pid = tmp_path / "flyte-eng-reused"
        reused_pid.mkdir()  # this process's pid, but another start time: the owner is gone
        (reused_pid / OWNER_FILE).write_text(json.dumps({"pid": os.getpid(), "started": 1.0}))
        removed = reap_stale_scratch_dirs("eng", parent)
        # The sweep waited for them (and reaped them: their exit status is its, not Popen's).
        stopped = [p.poll() is not None for p in (user, holder, tagged)]
    finally:
        for p in (user, holder, tagged):
            p.kill()
    assert stopped == [True, True, True]
    assert sorted(removed) == sorted([orphan, named, str(reused_pid)])
    for gone in (orphan, named, reused_pid):
        assert not os.path.exists(gone)
    for kept in (other_kind, mine, str(unmarked)):
        assert os.path.isdir(kept), kept


def test_what_a_sigkilled_ray_task_left_is_cleared_by_the_next_ray_task(tmp_path):
    proc = start_dag_process("ray_process_dags.py", "ray_sleeping", env={"FLYTE_RAY_TEST_DIR": str(tmp_path)})
    try:
        wait_for(lambda: (tmp_path / "sleeping.json").exists() or proc.poll() is not None,
                 timeout=240, what="the Ray task to start")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        temp_dir = json.loads((tmp_path / "sleeping.json").read_text())["temp_dir"]
        started = descendants(proc.pid)
        assert any(p.name() == "raylet" for p in started)
        proc.send_signal(signal.SIGKILL)  # Airflow's last resort: post never runs
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
    # Ray's raylet and workers follow their parent; its agents can linger for minutes.
    assert os.path.isdir(temp_dir)
    # The next Ray task's pre makes its own temp dir this way, and clears the dead one's leftovers.
    fresh = make_scratch_dir("ray", parent=os.path.dirname(temp_dir))
    try:
        assert not os.path.exists(temp_dir)
        try:
            wait_for(lambda: not alive(started), timeout=30, what="the dead task's Ray processes to be gone")
        except TimeoutError:
            raise AssertionError(f"left: {[(p.pid, p.status(), p.cmdline()[:3]) for p in alive(started)]}") from None
    finally:
        remove_scratch_dir(fresh)
        for p in alive(started):
            p.kill()
