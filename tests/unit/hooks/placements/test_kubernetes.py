"""hooks/placements/kubernetes: the deferral names the trigger by the path the triggerer's table stores."""

from __future__ import annotations

from airflow_provider_flyte.hooks.placements.kubernetes import JOB_TRIGGER


def test_the_trigger_path_names_the_trigger_class_and_its_serialized_path() -> None:
    from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger

    assert f"{FlyteKubernetesJobTrigger.__module__}.{FlyteKubernetesJobTrigger.__qualname__}" == JOB_TRIGGER
    trigger = FlyteKubernetesJobTrigger({"conn_id": "c"}, poll_interval=1, startup_timeout=2, started_at=3)
    assert trigger.serialize()[0] == JOB_TRIGGER
