"""The same DAG locally, on an existing cluster and on Kubernetes (deferred), through dag.test(): identical XComs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.dask_clusters import start_cluster


@pytest.fixture
def staging(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", "true")


@pytest.mark.parametrize("place", ["local", "existing cluster", "kubernetes"])
def test_the_same_dag_gives_the_same_xcom_in_each_place(place: str, request: Any, dag_runner: Any,
                                                        monkeypatch: pytest.MonkeyPatch, staging: None) -> None:
    cluster = None
    if place == "existing cluster":
        cluster = start_cluster()
        monkeypatch.setenv("AIRFLOW_CONN_FLYTE_TEST_THREE", f'{{"conn_type": "flyte_dask", "host": "{cluster.address}"}}')
        monkeypatch.setenv("FLYTE_TEST_CONN_ID", "flyte_test_three")
    elif place == "kubernetes":
        k8s = request.getfixturevalue("k8s")
        monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    try:
        result = dag_runner.run("three_places_dag.py", "three_places")
    finally:
        if cluster is not None:
            cluster.stop()
    assert result.state == "success", result.states
    assert result.value("workers_and_square") == {"workers": 2, "square": 25}
    if place == "kubernetes":
        assert k8s.server.count(verb="create", resource="daskjobs") == 1
