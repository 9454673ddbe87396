"""The simulated cluster's fixtures (tests/support/k8s/fixtures.py).

These tests are about the HTTP stand-in itself (its API server, operators and kubelet over its
in-memory store), so they keep it whatever ``FLYTE_K8S_BACKEND`` says.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.k8s.fixtures import k8s, k8s_api, stand_in_cluster  # noqa: F401


@pytest.fixture(scope="package")
def k8s_cluster() -> Iterator[Any]:
    yield from stand_in_cluster()
