"""Integration fixtures: the simulated Kubernetes cluster (tests/k8s) for the Kubernetes placement tests."""

from tests.k8s.fixtures import k8s, k8s_api, k8s_cluster  # noqa: F401
