from tests.support.k8s.real.fixtures import real_cluster  # noqa: F401
