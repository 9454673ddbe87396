"""hooks/placements/kubernetes: the deferral names the trigger by the path the triggerer's table stores."""

from __future__ import annotations

from airflow_provider_flyte.hooks.placements.kubernetes import JOB_TRIGGER


def test_the_trigger_path_names_the_trigger_class_and_its_serialized_path() -> None:
    from airflow_provider_flyte.triggers.kubernetes_job import FlyteKubernetesJobTrigger

    assert f"{FlyteKubernetesJobTrigger.__module__}.{FlyteKubernetesJobTrigger.__qualname__}" == JOB_TRIGGER
    trigger = FlyteKubernetesJobTrigger({"conn_id": "c"}, poll_interval=1, startup_timeout=2, started_at=3)
    assert trigger.serialize()[0] == JOB_TRIGGER


def test_the_entrypoint_file_is_the_runtime_packages_main() -> None:
    import airflow_provider_flyte.runtime as runtime_package
    from airflow_provider_flyte.hooks.placements.kubernetes import entrypoint_command, entrypoint_file

    assert entrypoint_file() == runtime_package.__file__.replace("__init__.py", "__main__.py")
    assert entrypoint_command("s3://b/runs/k/spec.json")[1:] == ["-m", "airflow_provider_flyte.runtime",
                                                                 "s3://b/runs/k/spec.json"]
