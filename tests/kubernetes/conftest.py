"""Integration fixtures: the simulated Kubernetes cluster (tests/support/k8s) for the Kubernetes placement tests."""

from tests.support.k8s.fixtures import k8s, k8s_api, k8s_cluster  # noqa: F401
