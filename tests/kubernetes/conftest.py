"""Integration fixtures: the simulated Kubernetes cluster (tests/support/k8s) for the Kubernetes placement tests:
on a real API server (``real_cluster``) by default, on the HTTP stand-in with ``FLYTE_K8S_BACKEND=sim``."""

from tests.support.k8s.fixtures import k8s, k8s_api, k8s_cluster, k8s_real  # noqa: F401
from tests.support.k8s.real.fixtures import real_cluster  # noqa: F401
