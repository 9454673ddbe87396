"""The simulated cluster's fixtures (tests/support/k8s/fixtures.py)."""

from tests.support.k8s.fixtures import k8s, k8s_api, k8s_cluster  # noqa: F401
