"""pytest fixtures for the real control plane (:mod:`tests.support.k8s.real.cluster`). Use them from a
``conftest.py``::

    from tests.support.k8s.real.fixtures import real_cluster  # noqa: F401

- ``real_cluster`` (session): etcd + kube-apiserver + kube-controller-manager with every CRD of
  ``tests/support/k8s_crds`` applied, and the ``OwnerReferencesPermissionEnforcement`` admission plugin on
  (as strict clusters run it: setting ``blockOwnerDeletion`` needs ``update`` on the owner's ``finalizers``).
  Missing binaries fail the test with the build command (never a skip). Under ``scripts/test.sh`` the
  build runs in the background: the fixture first waits for it (:func:`wait_for_build`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.k8s.real.cluster import ControlPlaneUnavailable, RealCluster

#: Admission plugins on top of the API server's defaults.
ADMISSION_PLUGINS = "OwnerReferencesPermissionEnforcement"
#: The longest wait for a background build (it takes about 14 minutes on 2 busy cores).
BUILD_WAIT_S = 45 * 60.0


def wait_for_build(timeout: float = BUILD_WAIT_S) -> None:
    """Wait for the background build ``scripts/test.sh`` started (``FLYTE_K8S_BUILD_LOG``/``_PID``), if any.

    Its log ends with ``rc=<status>``; a failed build, or one that died without saying, fails naming the log.
    """
    log = os.environ.get("FLYTE_K8S_BUILD_LOG")
    if not log:
        return
    pid = int(os.environ.get("FLYTE_K8S_BUILD_PID") or 0)
    started = time.monotonic()
    while True:
        lines = Path(log).read_text(errors="replace").splitlines() if Path(log).exists() else []
        last = lines[-1] if lines else ""
        if last.startswith("rc="):
            if last != "rc=0":
                tail = "\n".join(lines[-15:])
                raise ControlPlaneUnavailable(f"scripts/k8s/build_apiserver.sh failed ({last}); its log is {log}:\n{tail}")
            return
        if pid and not _alive(pid):
            raise ControlPlaneUnavailable(f"the background build of the API server (pid {pid}) ended without a "
                                          f"status; its log is {log}")
        if time.monotonic() - started > timeout:
            raise ControlPlaneUnavailable(f"the background build of the API server did not end in {timeout:.0f} s; "
                                          f"its log is {log}")
        time.sleep(2)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    wait_for_build()
    cluster = RealCluster(extra_apiserver_args=(f"--enable-admission-plugins={ADMISSION_PLUGINS}",)).start()
    try:
        cluster.apply_crds()
        yield cluster
    finally:
        cluster.stop()
