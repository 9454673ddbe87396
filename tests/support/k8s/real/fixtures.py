"""pytest fixtures for the real control plane (:mod:`tests.support.k8s.real.cluster`). Use them from a
``conftest.py``::

    from tests.support.k8s.real.fixtures import real_cluster  # noqa: F401

- ``real_cluster`` (session): etcd + kube-apiserver + kube-controller-manager with every CRD of
  ``tests/support/k8s_crds`` applied. Missing binaries fail the test with the build command (never a skip).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.k8s.real.cluster import RealCluster


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[RealCluster]:
    cluster = RealCluster().start()
    try:
        cluster.apply_crds()
        yield cluster
    finally:
        cluster.stop()
