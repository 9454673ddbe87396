"""The real control plane (etcd + kube-apiserver + kube-controller-manager, tests/support/k8s/real)."""

from tests.support.k8s.real.fixtures import real_cluster  # noqa: F401
