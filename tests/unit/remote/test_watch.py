"""``evaluate``: the startup rule on a job whose pod ended before its operator wrote the final status."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from airflow_provider_flyte.remote.jobs import JobRef
from airflow_provider_flyte.remote.watch import evaluate

REF = JobRef(conn_id="k8s", namespace="jobs", name="etl-x", manifest_module="airflow_provider_flyte.manifests.spark",
             spec_uri="file:///s/spec.json")


def _pod(phase: str) -> Any:
    return SimpleNamespace(metadata=SimpleNamespace(name="etl-x-driver"),
                           status=SimpleNamespace(phase=phase, init_container_statuses=None, container_statuses=None,
                                                  conditions=None))


def _app(state: str) -> dict[str, Any]:
    return {"kind": "SparkApplication", "metadata": {"name": "etl-x"}, "status": {"applicationState": {"state": state}}}


def test_a_job_whose_driver_ended_is_not_failed_as_one_that_never_started() -> None:
    # the driver ran longer than the startup timeout and ended; spark-operator has not written COMPLETED yet
    for state, phase in (("SUCCEEDING", "Succeeded"), ("RUNNING", "Succeeded"), ("SUBMITTED", "Succeeded")):
        assert evaluate(REF, _app(state), [_pod(phase)], started=0.0, now=600.0, startup_timeout=300,
                        deadline=None) is None, (state, phase)


def test_a_job_that_never_ran_still_fails_its_startup() -> None:
    final = evaluate(REF, _app("SUBMITTED"), [_pod("Pending")], started=0.0, now=301.0, startup_timeout=300,
                     deadline=None)
    assert final is not None and "did not start within 300 s" in final["message"]
