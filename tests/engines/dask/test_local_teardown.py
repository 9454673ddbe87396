"""Issue 27: a local Dask cluster's close stops its workers gracefully within the provider's timeout.

``LocalCluster.close()`` closes each nanny with ``Nanny.close()``'s default 5 s, of which the worker process
gets 4 s before its nanny SIGKILLs it ("Worker process still alive after 4.0 seconds, killing"). Workers that
need 6 s to close (a plugin's teardown; a loaded machine does the same) must still exit by themselves: the
exit codes the provider reads from the nannies' worker processes are 0 (a signal would be negative).
"""

from __future__ import annotations

import re
import signal

from tests.conftest import TEST_DAGS
from tests.support.procs import start_dag_process, terminate_group


def test_workers_slow_to_close_exit_by_themselves():
    proc = start_dag_process(TEST_DAGS / "dask_slow_close_dag.py", "dask_slow_close")
    try:
        log, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            terminate_group(proc, signal.SIGKILL, timeout=30)
    assert "DAGRUN_STATE=success" in log, log[-6000:]
    assert "still alive after" not in log and "killed by signal" not in log, log[-4000:]
    stopped = re.findall(r"Dask worker process\(es\) stopped in ([\d.]+) s, exit code\(s\) ([-\d, ]+?) \[", log)
    assert len(stopped) == 1, log[-4000:]
    seconds, codes = float(stopped[0][0]), [int(c) for c in stopped[0][1].split(", ")]
    assert codes == [0, 0], f"worker processes ended by signal(s): {codes}"
    assert seconds >= 5, seconds  # they did take their time, and were let
