"""The seed examples, ported, as one DAG on the simulated Kubernetes (tests/support/k8s) through dag.test().

Only the connection differs from a local run; each task imports a helper package from the DAG
folder inside its pods. The k8s fixture fails a test that leaves an object or a pod process.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

KINDS = {"process_data": "sparkapplications", "ray_squares": "rayjobs",
         "dask_workers_and_square": "daskjobs", "train_model": "pytorchjobs"}


@pytest.fixture
def on_k8s(k8s: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    (tmp_path / "store").mkdir()
    monkeypatch.setenv("AIRFLOW__FLYTE__STAGING_URI", f"file://{tmp_path / 'store'}")
    monkeypatch.setenv("FLYTE_TEST_CONN_ID", k8s.conn_id)
    return k8s


def _link_xcoms(dag_id: str, run_id: str) -> dict[tuple[str, str], Any]:
    """The extra links Airflow stored for the UI at the end of each task (``_link_<class>``)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id,
                                               XComModel.key.like("_link_%"))
        return {(x.task_id, x.key.removeprefix("_link_")): x.value for x in rows}


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "waiting-in-the-worker"])
def test_the_seed_examples_run_on_their_own_ephemeral_clusters(on_k8s: Any, dag_runner: Any, deferrable: bool,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", str(deferrable).lower())
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_OBJECT_URL", "https://dash.test/{kind}/{namespace}/{name}")
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_POD_URL", "https://dash.test/pod/{namespace}/{pod}?l={selector}")
    result = dag_runner.run("k8s_seed_dags.py", "k8s_seed")
    assert result.state == "success", result.states
    assert result.value("process_data") == 999
    assert result.value("ray_squares") == [0, 1, 4]
    assert result.value("dask_workers_and_square") == {"workers": 2, "square": 16}
    # two pods rendezvoused: rank 1 + rank 2 summed; rank 0's value came back
    assert result.value("train_model") == {"total": 3, "world_size": 2}
    links = _link_xcoms("k8s_seed", result.run_id)
    names = {task_id: _created_name(on_k8s, resource) for task_id, resource in KINDS.items()}
    assert links[("process_data", "KubernetesJobLink")] == f"https://dash.test/SparkApplication/default/{names['process_data']}"
    assert links[("process_data", "KubernetesPodLink")] == f"https://dash.test/pod/default/{names['process_data']}-driver?l="
    assert links[("train_model", "KubernetesJobLink")] == f"https://dash.test/PyTorchJob/default/{names['train_model']}"
    assert "job-role=master" in links[("train_model", "KubernetesPodLink")]
    # the engine's own UI link is not used on Kubernetes: an empty button (and no 'XCom not found' error)
    assert links[("process_data", "SparkUILink")] in ("", None)


def _created_name(k8s: Any, resource: str) -> str:
    """The job's name, from the requests that named it (the create's name is in its body)."""
    (name,) = {r.name for r in k8s.server.request_log(resource=resource) if r.name and r.verb in ("get", "delete")}
    return str(name)


@pytest.mark.parametrize("deferrable", [True, False], ids=["deferred", "waiting-in-the-worker"])
def test_execution_timeout_fails_the_task_and_deletes_its_object(on_k8s: Any, dag_runner: Any, deferrable: bool,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("AIRFLOW__FLYTE__KUBERNETES_DEFERRABLE", str(deferrable).lower())
    monkeypatch.setenv("FLYTE_TEST_TIMEOUT_S", "25")
    started = time.monotonic()
    result = dag_runner.run("k8s_seed_dags.py", "k8s_slow")
    took = time.monotonic() - started
    assert result.states[("outlives_its_timeout", -1)] == "failed"
    assert took < 25 + 60, f"the timed-out task took {took:.0f} s"
    assert on_k8s.server.count(verb="create", resource="daskjobs") == 1
    assert on_k8s.server.count(verb="delete", resource="daskjobs") >= 1
    on_k8s.sim.wait_for(lambda: not on_k8s.sim.live_processes(), timeout=30, what="the job's pods stopped")
    left = [p for p in (tmp_path / "store" / "runs").rglob("*") if p.is_file()]
    assert not left, f"the timed-out task's staged run is in the store after its pods stopped: {left}"
    # nothing left: the k8s fixture checks objects and pod processes after the test
