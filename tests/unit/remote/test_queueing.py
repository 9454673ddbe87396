"""QueueWait: a job waiting in a Kueue queue, look by look, as the two waiting paths see it."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_provider_flyte import TaskEnvironment
from airflow_provider_flyte.authoring.task_params import flyte_to_airflow
from airflow_provider_flyte.exceptions import FlyteConfigError
from airflow_provider_flyte.manifests.kueue import QUEUE_LABEL
from airflow_provider_flyte.operators.base import FlyteOperator
from airflow_provider_flyte.remote.jobs import JobRef
from airflow_provider_flyte.remote.queueing import NOT_ADMITTED, QueueWait
from airflow_provider_flyte.remote.watch import evaluate

REF = JobRef(conn_id="k8s", namespace="jobs", name="etl-x", manifest_module="airflow_provider_flyte.manifests.spark",
             spec_uri="file:///s/spec.json", queue_timeout=60.0)


def _app(suspend: bool | None, state: str = "", queue: str = "team-a") -> dict[str, Any]:
    spec = {} if suspend is None else {"suspend": suspend}
    return {"kind": "SparkApplication", "metadata": {"name": "etl-x", "labels": {QUEUE_LABEL: queue} if queue else {}},
            "spec": spec, "status": {"applicationState": {"state": state}} if state else {}}


def test_a_queued_job_is_not_timed_out_for_startup_and_its_startup_counts_from_admission(
        caplog: pytest.LogCaptureFixture) -> None:
    wait = QueueWait(REF, created=1000.0, log=logging.getLogger("t"))
    with caplog.at_level(logging.INFO):
        for now in (1001.0, 1030.0, 1055.0):  # suspended for 55 s: a startup timeout of 10 s does not apply
            since, final = wait.look(_app(True, "SUSPENDED"), now)
            assert final is None
            assert evaluate(REF, _app(True, "SUSPENDED"), [], started=since, now=now, startup_timeout=10,
                            deadline=None) is None
        since, final = wait.look(_app(False, "SUBMITTED"), 1056.0)
        assert (since, final) == (1056.0, None)
        assert wait.look(_app(False, "SUBMITTED"), 1060.0) == (1056.0, None)  # admission is remembered
        # 10 s after admission, not after creation, a job that still does not run fails its startup
        assert evaluate(REF, _app(False, "SUBMITTED"), [], started=since, now=1065.0, startup_timeout=10,
                        deadline=None) is None
        late = evaluate(REF, _app(False, "SUBMITTED"), [], started=since, now=1067.0, startup_timeout=10, deadline=None)
        assert late is not None and "did not start within 10 s" in late["message"]
    assert caplog.text.count("SparkApplication jobs/etl-x queued in Kueue queue 'team-a'") == 1
    assert "SparkApplication jobs/etl-x admitted after 56.0 s in Kueue queue 'team-a'" in caplog.text


def test_a_job_never_admitted_fails_after_the_queue_timeout_naming_the_queue() -> None:
    wait = QueueWait(REF, created=1000.0, log=logging.getLogger("t"))
    assert wait.look(_app(True), 1059.0)[1] is None
    _, final = wait.look(_app(True), 1061.0)
    assert final is not None and final["status"] == "failed" and final[NOT_ADMITTED] is True
    assert "not admitted by Kueue queue 'team-a' within 60 s" in final["message"]


def test_a_job_suspended_again_is_queued_again_and_its_queue_timeout_starts_over() -> None:
    wait = QueueWait(REF, created=1000.0, log=logging.getLogger("t"))
    assert wait.look(_app(False, "RUNNING"), 1050.0) == (1050.0, None)
    assert wait.look(_app(True, "SUSPENDING"), 1100.0) == (1100.0, None)  # preempted: queued since 1100
    assert wait.look(_app(True, "SUSPENDED"), 1159.0)[1] is None
    assert wait.look(_app(True, "SUSPENDED"), 1161.0)[1] is not None


def test_without_a_queue_label_nothing_changes() -> None:
    wait = QueueWait(REF, created=1000.0, log=logging.getLogger("t"))
    assert wait.look(_app(True, queue=""), 5000.0) == (1000.0, None)
    assert wait.look(None, 5000.0) == (1000.0, None)


def test_the_task_environment_and_override_take_a_kueue_queue_checked_at_parse_time() -> None:
    env = TaskEnvironment(name="e", kueue_queue="team-a")
    _, changed = flyte_to_airflow({"kueue_queue": "team-b"}, env, where="flyte_task", operator_class=FlyteOperator)
    assert (env.kueue_queue, changed.kueue_queue) == ("team-a", "team-b")
    assert TaskEnvironment(name="e", kueue_queue="").kueue_queue == ""
    with pytest.raises(FlyteConfigError, match=r"TaskEnvironment.kueue_queue: not a Kueue LocalQueue name.*'Team A'"):
        TaskEnvironment(name="e", kueue_queue="Team A")
    with pytest.raises(FlyteConfigError, match=r"flyte_task.kueue_queue: not a Kueue LocalQueue name"):
        flyte_to_airflow({"kueue_queue": "x" * 64}, env, where="flyte_task", operator_class=FlyteOperator)
