"""The DAG-run listener stops the run's ``scope="run"`` warm servers and never fails the DAG run."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from airflow_provider_flyte.listeners import FlyteListenersPlugin, warm_run_end
from airflow_provider_flyte.warm import run_end

RUN = SimpleNamespace(dag_id="etl", run_id="manual__2026-01-01")


@pytest.mark.parametrize("hook", [warm_run_end.on_dag_run_success, warm_run_end.on_dag_run_failed])
def test_a_finished_run_stops_its_warm_servers(monkeypatch, caplog, hook) -> None:
    calls = []
    monkeypatch.setattr(run_end, "stop_run", lambda dag_id, run_id: calls.append((dag_id, run_id)) or ["spark-abc"])
    with caplog.at_level(logging.INFO, logger=warm_run_end.__name__):
        hook(dag_run=RUN, msg="")
    assert calls == [("etl", "manual__2026-01-01")]
    assert "stopping its warm server spark-abc" in caplog.text


def test_a_failure_to_stop_is_a_warning_not_an_error(monkeypatch, caplog) -> None:
    def broken(dag_id: str, run_id: str) -> list[str]:
        raise OSError("state folder is read-only")

    monkeypatch.setattr(run_end, "stop_run", broken)
    with caplog.at_level(logging.WARNING, logger=warm_run_end.__name__):
        warm_run_end.on_dag_run_failed(dag_run=RUN, msg="boom")  # must not raise
    assert "Could not stop the warm servers of DAG run etl/manual__2026-01-01" in caplog.text
    assert "read-only" in caplog.text


def test_the_plugin_registers_the_listener_module() -> None:
    assert FlyteListenersPlugin.listeners == [warm_run_end]
    assert FlyteListenersPlugin.name == "flyte_plugins_listeners"
